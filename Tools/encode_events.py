#!/usr/bin/env python3
"""Writes Trail events in the canonical encoding of Docs/FORMAT.md, from a
language other than Swift, and checks that Trail computes the same ids.

    Tools/encode_events.py --count 1000 | trail append --encoded --stdin --data DIR

Each event is framed as a 4-byte big-endian length then its bytes. With
--check, it runs `trail append --encoded` itself and compares every id
Trail prints with the SHA-256 this script computed.
"""
import argparse, hashlib, struct, subprocess, sys, time


def encode(namespace, timestamp, event_type, payload, parents=()):
    ns = namespace.encode()
    ty = event_type.encode()
    body = bytes([1, len(ns)]) + ns + bytes([0])  # version 1, namespace, no author
    body += struct.pack(">QH", timestamp, len(parents)) + b"".join(sorted(parents))
    body += bytes([len(ty)]) + ty + struct.pack(">I", len(payload)) + payload
    return body + bytes([0]), hashlib.sha256(body).digest()  # no signature


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--namespace", default="interop/python")
    parser.add_argument("--check", metavar="TRAIL", help="path of the trail executable to run and compare with")
    parser.add_argument("--data", default="trail-data")
    args = parser.parse_args()
    frames, ids, previous = [], [], None
    now = int(time.time() * 1000) << 16
    for index in range(args.count):
        parents = [previous] if previous and index % 3 else []
        event, event_id = encode(args.namespace, now + index, "note", f"event {index}".encode(), parents)
        frames.append(struct.pack(">I", len(event)) + event)
        ids.append(event_id.hex())
        previous = event_id
    stream = b"".join(frames)
    if not args.check:
        sys.stdout.buffer.write(stream)
        return
    result = subprocess.run([args.check, "append", "--encoded", "--stdin", "--json", "--data", args.data],
                            input=stream, capture_output=True, check=True)
    printed = [line.split('"id":"')[1][:64] for line in result.stdout.decode().splitlines() if '"id":"' in line]
    if printed != ids:
        sys.exit(f"ids differ: {sum(a != b for a, b in zip(printed, ids))} of {len(ids)}")
    print(f"{len(ids)} events: Trail's ids match the ones computed here")


if __name__ == "__main__":
    main()
