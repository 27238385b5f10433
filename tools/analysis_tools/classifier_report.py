"""Thin door into :mod:`spinexr.cli.classifier_report` (python -m spinexr.cli.classifier_report)."""
from spinexr.cli.classifier_report import main

if __name__ == '__main__':
    main()
