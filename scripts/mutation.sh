#!/usr/bin/env bash
# Mutation testing of the modules whose bugs cost money: the envelope codec and the signing
# helper (edged/contract), the payment state machines and the code classifiers. mutmut mutates
# them one change at a time and runs their fast tests against each mutant; a mutant no test
# kills is a hole in the tests. Not part of scripts/test.sh: it takes several minutes.
#
#   bash scripts/mutation.sh          # mutate, test, print the score per module
#   .venv/bin/mutmut results          # afterwards: the surviving mutants by name
#   .venv/bin/mutmut show NAME        # the diff of one
#
# The modules and the tests are in pyproject.toml under [tool.mutmut]. mutmut works in
# ./mutants (a mutated copy of the tree, git-ignored); each run starts from a clean one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXTRAS=dev,mutation bash scripts/bootstrap.sh >mutants.log 2>&1 || {
    tail -20 mutants.log >&2
    exit 1
}
rm -rf mutants
# Fork-per-mutant runs; two cores are all this machine has.
.venv/bin/mutmut run --max-children "${MUTMUT_CHILDREN:-2}" >>mutants.log 2>&1 || {
    tail -40 mutants.log >&2
    exit 1
}
.venv/bin/python scripts/mutation_score.py
