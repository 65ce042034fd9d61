"""What every part shares and none owns: errors that name the fix (:mod:`.errors`), text
made safe for a terminal, file, page or prompt (:mod:`.text`), atomic writes and reads that
trust no run folder (:mod:`.files`), every bound on data crossing the trust boundary
(:mod:`.bounds`), the seams' registries filled from entry points (:mod:`.registry`,
:mod:`.plugins`), walks over Python syntax (:mod:`.ast_tools`), and how sure a score is
(:mod:`.statistics`)."""
