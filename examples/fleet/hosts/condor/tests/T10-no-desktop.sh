#!/bin/sh
# Post-apply check: the headless server got no desktop configuration.
set -eu
test ! -e "$HOME/.config/alacritty"
test ! -e "$HOME/.config/niri"
