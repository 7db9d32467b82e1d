#!/usr/bin/env bash
# Runs the Python example (liaison_example.py) against a running Liaison,
# through run.sh (which makes the virtual environment under
# .tools/python-venv once, installs requirements.txt when it changes and
# generates the liaison.v1 classes), passing its arguments to the example, e.g.
#
#   LIAISON_NATS_URL=nats://127.0.0.1:4222 bash clients/python/run_example.sh
#
# (the agencies log in with their NKeys, deploy/agencies/dev-keys/AGENCY.nk by default)
#
# Exit status: the example's; 3 when Python 3 or pip is missing.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" clients/python/liaison_example.py "$@"
