"""Stop `copier copy` with one line per refused answer, instead of a traceback.

copier validates answers at the prompt, but not those given with -d or
--data-file (a bad one ends in a traceback) nor defaults computed from other
answers. The first task receives every problem the same Jinja macros found and
fails the copy cleanly; copier then removes the half-made project.
"""

import sys


def main(argv: list[str]) -> int:
    problems = [line for arg in argv for line in arg.splitlines() if line.strip()]
    for line in problems:
        print(f"refused: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
