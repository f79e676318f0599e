#!/bin/sh
# Post-apply check: git picks up the managed identity and signs with SSH.
set -eu
test "$(git config --global user.email)" = "robin@vale.example"
test "$(git config --global gpg.format)" = "ssh"
