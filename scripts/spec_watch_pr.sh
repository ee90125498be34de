#!/usr/bin/env bash
# The spec watch's pull request (.github/workflows/spec-watch.yml): commit what `make spec-watch
# ARGS=--write` and `make generate` changed (the copies, generated/ and the price catalogue) to
# the branch spec-watch/update and open one pull request for it, or update the one open, with the
# watch's summary (spec-watch.md) as its body. The catalogue goes with the copy it is read from:
# the pull request is then whole as opened, its tests those the job ran, and a price the summary
# names is in its diff. The same change proposed twice is left as it is: no push, no second pull
# request.
#
# Needs GH_TOKEN (a token whose pull requests trigger the repository's checks) and REPOSITORY
# (owner/name); TESTS is the status of `make pytest` on the change.
set -euo pipefail

branch="spec-watch/update"
label="upstream-spec"
if [ -z "${GH_TOKEN:-}" ]; then
    echo "::error::No SPEC_WATCH_TOKEN secret: a pull request opened with the default token would" \
        "not run the repository's checks, so none is opened. The summary above says what changed."
    exit 1
fi

{
    cat spec-watch.md
    echo
    if [ "${TESTS:-1}" = 0 ]; then
        echo "\`make generate\` and \`make pytest\` pass on this change."
    else
        echo "\`make pytest\` fails on this change (status ${TESTS:-unknown}): see the checks below."
    fi
} > pull-request.md

git config user.name "stability-user spec watch"
git config user.email "spec-watch@users.noreply.github.com"
git switch -c "$branch"
git add spec/upstream generated facade/stability_user/prices/catalogue.json openapi.yaml
git commit -q -m "Follow Stability's published API documents (spec watch)"

remote="https://x-access-token:${GH_TOKEN}@github.com/${REPOSITORY}.git"
if git fetch -q "$remote" "refs/heads/$branch:refs/remotes/watch/$branch" 2>/dev/null \
    && [ "$(git rev-parse "watch/$branch^{tree}")" = "$(git rev-parse "HEAD^{tree}")" ]; then
    echo "This change is already proposed on $branch."
else
    git push -q --force "$remote" "HEAD:refs/heads/$branch"
fi

gh label create "$label" --repo "$REPOSITORY" --color 0e8a16 --force \
    --description "Stability changed a document it publishes (spec watch)"
open=$(gh pr list --repo "$REPOSITORY" --head "$branch" --state open --json number --jq '.[0].number // empty')
if [ -n "$open" ]; then
    gh pr edit "$open" --repo "$REPOSITORY" --body-file pull-request.md
else
    gh pr create --repo "$REPOSITORY" --base main --head "$branch" --label "$label" \
        --title "Stability's published API documents changed" --body-file pull-request.md
fi
