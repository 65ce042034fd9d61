"""Reading a run: the library's view for scripts and notebooks (:mod:`.results`), the
terminal (:mod:`.terminal` while a run goes, :mod:`.show` after), the HTML report (:mod:`.html`), plots (:mod:`.plots`) and the
notebook's HTML (:mod:`.notebook`). A run folder is untrusted input here."""
