"""`python -m benchmarks [--quick]`: see benchmarks/__init__.py."""

from .run import main

raise SystemExit(main())
