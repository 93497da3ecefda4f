"""The top layer: the ``dagsim`` command line and the main job (``dagsim demo``).

The only code that knows every package. Layers, each importing only those below it (a test parses every
module's imports): ``dagsim`` (numpy core) < ``llm``, ``proofs_check`` < ``figures`` < ``app``.
``cli`` composes dagsim's sub-commands with ``check`` (proofs_check), ``figures``, ``demo`` and ``llm``;
``demo`` runs the main job's stages in order.
"""
