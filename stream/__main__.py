"""``python -m stream``: run the streaming job (see :mod:`stream.job`)."""

from stream.job import main

raise SystemExit(main())
