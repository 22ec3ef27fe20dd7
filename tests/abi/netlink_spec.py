#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""netlink_spec.py SPEC HEADER - check that uapi/kvaccel_netlink.h numbers
the attributes and commands of Documentation/netlink/kvaccel.yaml in the
spec's order (attributes from 1, operations then events from 1), that the
family and group names agree, and that every operation names only known
attributes. Prints TAP."""
import re
import sys

import yaml


def upper(name):
    return name.upper().replace('-', '_')


def enum_entries(text, enum):
    body = re.search(r'enum %s \{(.*?)\};' % enum, text, re.S).group(1)
    return re.findall(r'^\s*(\w+),?\s*$', body, re.M)


def main():
    spec = yaml.safe_load(open(sys.argv[1]))
    header = open(sys.argv[2]).read()
    checks = []

    attrs = [a['name'] for a in spec['attribute-sets'][0]['attributes']]
    want = ['KVACCEL_A_UNSPEC'] + ['KVACCEL_A_' + upper(a) for a in attrs] + \
        ['__KVACCEL_A_MAX']
    checks.append(('attributes_in_spec_order',
                   enum_entries(header, 'kvaccel_attr') == want))

    ops = [o['name'] for o in spec['operations']['list']]
    cmds = ['KVACCEL_CMD_UNSPEC'] + \
        ['KVACCEL_CMD_' + upper(o) for o in ops] + ['__KVACCEL_CMD_MAX']
    checks.append(('commands_in_spec_order',
                   enum_entries(header, 'kvaccel_cmd') == cmds))

    checks.append(('family_name', re.search(
        r'#define KVACCEL_GENL_NAME\s+"%s"' % spec['name'], header) is not None))
    groups = [g['name'] for g in spec['mcast-groups']['list']]
    checks.append(('events_group', groups == ['events'] and re.search(
        r'#define KVACCEL_GENL_MCGRP_EVENTS\s+"events"', header) is not None))

    known = set(attrs)
    used_ok = True
    for o in spec['operations']['list']:
        for kind in ('do', 'dump', 'event'):
            part = o.get(kind) or {}
            lists = [part.get('attributes', [])]
            for sub in ('request', 'reply'):
                lists.append((part.get(sub) or {}).get('attributes', []))
            for lst in lists:
                used_ok &= all(a in known for a in lst)
    checks.append(('operations_use_known_attributes', used_ok))

    print('TAP version 13')
    print('1..%d' % len(checks))
    for i, (name, good) in enumerate(checks, 1):
        print('%s %d netlink_spec.%s' % ('ok' if good else 'not ok', i, name))
    return 0 if all(g for _, g in checks) else 1


if __name__ == '__main__':
    sys.exit(main())
