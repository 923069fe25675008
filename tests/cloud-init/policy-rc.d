#!/bin/sh
# /usr/sbin/policy-rc.d for the first boot only: packages installed now do not start their
# services (Debian's etcd-server would start a one-node cluster named after the host).
# runcmd removes this file once etcd-discovery is in place.
exit 101
