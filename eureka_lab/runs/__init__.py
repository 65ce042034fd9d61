"""The run folder: its settings (:mod:`.config`), its typed records (:mod:`.records`), the
store that alone knows its file names (:mod:`.store`, reading through :mod:`.formats`), and
the one view of every candidate's score (:mod:`.scores`)."""
