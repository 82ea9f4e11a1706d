"""``python -m retain``: the command line; also the file to give ``spark-submit``.

``spark-submit`` runs a Python file, not a console script, so on a cluster::

    spark-submit --master yarn "$(python -c 'import retain.__main__ as m; print(m.__file__)')" \
        score --engine spark --data ... --as-of ...
"""

import sys

from retain.cli import app

if __name__ == "__main__":
    sys.exit(app())
