#!/usr/bin/env bash
# make screenshot: README's picture of the pull-request comment. A
# throwaway git repository holds examples/canary.cue on main and, on a
# branch, a canary step and a fault; ci/meshctl-pr.sh writes the comment's
# body as the GitHub Action would post it; hack/screenshot renders it to
# HTML with a GitHub-flavoured Markdown library; headless Chromium (Debian's)
# takes the picture, docs/pr-comment.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

repo="$work/repo"
mkdir -p "$repo"
cd "$repo"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_SYSTEM=/dev/null
git init -q -b main
git -c user.name=ci -c user.email=ci@example.invalid commit -q --allow-empty -m init
cp "$root/examples/canary.cue" mesh.cue
git add mesh.cue
git -c user.name=ci -c user.email=ci@example.invalid commit -q -m "a canary at 10%"
git checkout -q -b canary-step
sed -i 's/split: {books: 90, "books-v2": 10}/split: {books: 50, "books-v2": 50}\n\t\tfault: {percent: 5, status: 503}/' mesh.cue
git -c user.name=ci -c user.email=ci@example.invalid commit -q -am "books-v2 to 50%, and a game-day fault"

PATH="$root/bin:$PATH" MESHCTL_CACHE=off "$root/ci/meshctl-pr.sh" --platform none --base-rev main...HEAD >"$work/comment.md"
(cd "$root/hack/screenshot" && go run . <"$work/comment.md" >"$work/comment.html")

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--hide-scrollbars --user-data-dir="$work/chromium" --window-size=940,500 \
	--screenshot="$root/docs/pr-comment.png" "file://$work/comment.html" 2>/dev/null
echo "wrote docs/pr-comment.png"
