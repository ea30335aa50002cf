#!/bin/sh
# hil-setup.service: the drivers and the first frame, before emotiond.service starts. Then, as
# Raspberry Pi OS's udev rules do for the Pi's own chip, the LED chip goes to group gpio, and
# /etc/emotiond/config.toml (the package's conffile) is pointed at it.
. /hil/lib.sh
setup_drivers
chgrp gpio /dev/$CHIP && chmod 660 /dev/$CHIP || fail "chgrp gpio /dev/$CHIP"
sed -i "s|@CHIP@|/dev/$CHIP|" /etc/emotiond/config.toml
feed "$(first_frame)"
sleep 0.5
ls -l /dev/video0 /dev/$CHIP /dev/ttyS0 | sed 's/^/T_DEV /'
