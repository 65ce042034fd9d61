"""The operating system as the boundary around candidate code: per-job limits and
namespaces (:mod:`.limits`), the confinement a job puts itself under before reward code
loads (:mod:`.lockdown`: :mod:`.capabilities`, :mod:`.landlock`, :mod:`.seccomp`), and which
of it holds on this machine (:mod:`.probing`)."""
