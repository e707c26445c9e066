"""The bus picks each record's partition exactly as aiokafka's (and Java's) default partitioner does."""

from __future__ import annotations

import os
import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from switchboard import bus


def test_murmur2_is_kafkas_hash_for_every_length():
    rng = random.Random(7)
    keys = [os.urandom(n) for n in range(0, 70) for _ in range(20)]
    keys += [rng.randbytes(rng.randrange(300)) for _ in range(2000)]
    keys += ["fr:thread:é-42".encode(), b"x:author:1234567890", b"\x00\xff" * 9]
    assert [bus.murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]


def test_partition_of_is_the_default_partitioners_choice():
    rng = random.Random(11)
    for count in (1, 2, 3, 6, 12, 50):
        partitions = tuple(range(count))
        for _ in range(300):
            key = rng.randbytes(rng.randrange(1, 60))
            expected = DefaultPartitioner()(key, list(partitions), list(partitions))
            assert bus.partition_of(key, partitions) == expected
