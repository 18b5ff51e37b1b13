#!/usr/bin/env bash
# meshctl in a pull request (GitHub) or merge request (GitLab): vet the mesh,
# diff it offline against the merge base, and post the diff as one comment
# that later pushes update rather than repeat.
#
# The GitHub Action (action.yml) and the GitLab template
# (examples/ci/gitlab-ci.yml) both run this script; ci/pr_test.go runs it
# against a stub of each API on loopback.
#
# Usage: meshctl-pr.sh --platform github|gitlab|none --base-rev REV [--path mesh.cue] [--max-bytes 60000]
#
# GitHub reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL (default
# https://api.github.com) and the pull request's number from PR_NUMBER, or
# else from the event at GITHUB_EVENT_PATH. GitLab reads GITLAB_TOKEN (a
# project or personal access token with the api scope: CI_JOB_TOKEN cannot
# write notes), CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID.
# "none" prints the comment's body and posts nothing.
#
# Exit codes: 0 when the mesh is valid, whether or not it differs (a
# difference is for the reviewer, not a failure); 1 when it is invalid or
# the diff fails (the comment then says why); 2 bad usage; 3 posting the
# comment failed.
set -euo pipefail

platform="" base_rev="" path="mesh.cue" max_bytes=60000
while [ $# -gt 0 ]; do
	case "$1" in
	--platform) platform="$2"; shift 2 ;;
	--base-rev) base_rev="$2"; shift 2 ;;
	--path) path="$2"; shift 2 ;;
	--max-bytes) max_bytes="$2"; shift 2 ;;
	*) echo "meshctl-pr: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$platform" in
github | gitlab | none) ;;
*) echo "meshctl-pr: --platform github, gitlab or none" >&2; exit 2 ;;
esac
if [ -z "$base_rev" ]; then
	echo "meshctl-pr: --base-rev REV: the merge base to diff against, such as origin/main...HEAD" >&2
	exit 2
fi

# One comment per mesh: the marker names the path, so that a repository
# with several meshes gets a comment for each.
marker="<!-- meshctl-diff: ${path} -->"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
body="$work/body.md"
status=0

# vet first: an invalid mesh fails the job, and the comment says why.
if ! meshctl vet -q "$path" 2>"$work/vet.err"; then
	status=1
	{
		echo "$marker"
		echo "### meshctl vet: \`${path}\` is invalid"
		echo
		echo '```'
		cat "$work/vet.err"
		echo '```'
	} >"$body"
else
	set +e
	meshctl diff --offline --base-rev "$base_rev" -o markdown --max-bytes "$max_bytes" "$path" >"$work/diff.md" 2>"$work/diff.err"
	code=$?
	set -e
	case "$code" in
	0 | 1)
		{ echo "$marker"; cat "$work/diff.md"; } >"$body"
		# Warnings of the diff (a comment over the budget) go to the log.
		cat "$work/diff.err" >&2
		;;
	*)
		status=1
		{
			echo "$marker"
			echo "### meshctl diff failed for \`${path}\`"
			echo
			echo '```'
			cat "$work/diff.err"
			echo '```'
		} >"$body"
		;;
	esac
fi

if [ "$platform" = none ]; then
	cat "$body"
	exit "$status"
fi

# jq makes the request bodies: the markdown, as one JSON string.
payload=$(jq -Rs '{body: .}' <"$body")

# api METHOD URL [DATA]: one request; prints the response body, fails on
# an HTTP error with the status.
api() {
	local method=$1 url=$2 data=${3-}
	local args=(--silent --show-error --fail-with-body -X "$method" -H "Accept: application/json")
	case "$platform" in
	github) args+=(-H "Authorization: Bearer ${GITHUB_TOKEN:?GITHUB_TOKEN is not set}" -H "X-GitHub-Api-Version: 2022-11-28") ;;
	gitlab) args+=(-H "PRIVATE-TOKEN: ${GITLAB_TOKEN:?GITLAB_TOKEN is not set}") ;;
	esac
	if [ -n "$data" ]; then
		args+=(-H "Content-Type: application/json" --data-binary "$data")
	fi
	curl "${args[@]}" "$url"
}

case "$platform" in
github)
	api_url=${GITHUB_API_URL:-https://api.github.com}
	repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
	pr=${PR_NUMBER:-}
	if [ -z "$pr" ] && [ -n "${GITHUB_EVENT_PATH:-}" ]; then
		pr=$(jq -r '.pull_request.number // empty' "$GITHUB_EVENT_PATH")
	fi
	if [ -z "$pr" ]; then
		echo "meshctl-pr: no pull request number (PR_NUMBER, or a pull_request event)" >&2
		exit 2
	fi
	list="$api_url/repos/$repo/issues/$pr/comments"
	update="$api_url/repos/$repo/issues/comments"
	update_method=PATCH
	;;
gitlab)
	api_url=${CI_API_V4_URL:?CI_API_V4_URL is not set}
	project=${CI_PROJECT_ID:?CI_PROJECT_ID is not set}
	mr=${CI_MERGE_REQUEST_IID:?CI_MERGE_REQUEST_IID is not set: run in a merge request pipeline}
	list="$api_url/projects/$project/merge_requests/$mr/notes"
	update="$list"
	update_method=PUT
	;;
esac

# Find this mesh's comment by its marker, page by page.
id=""
page=1
while :; do
	if ! comments=$(api GET "$list?per_page=100&page=$page"); then
		echo "meshctl-pr: listing the comments failed: $comments" >&2
		exit 3
	fi
	id=$(jq -r --arg m "$marker" '(. // []) | map(select((.body // "") | startswith($m))) | first | .id // empty' <<<"$comments")
	if [ -n "$id" ] || [ "$(jq '. // [] | length' <<<"$comments")" -lt 100 ]; then
		break
	fi
	page=$((page + 1))
done

if [ -n "$id" ]; then
	if ! out=$(api "$update_method" "$update/$id" "$payload"); then
		echo "meshctl-pr: updating comment $id failed: $out" >&2
		exit 3
	fi
	echo "meshctl-pr: updated the comment ($id)" >&2
else
	if ! out=$(api POST "$list" "$payload"); then
		echo "meshctl-pr: posting the comment failed: $out" >&2
		exit 3
	fi
	echo "meshctl-pr: posted the comment ($(jq -r .id <<<"$out"))" >&2
fi
exit "$status"
