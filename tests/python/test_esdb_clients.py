"""The official EventStoreDB/KurrentDB Python clients against `daojia serve`.

One file for both packages: `kurrentdbclient` and `esdbclient` have the same API under other
names, and the shim below picks one with DAOJIA_ESDB_PACKAGE. Run by tests/python/run.sh,
which starts the servers and sets:

  DAOJIA_ESDB_PACKAGE   kurrentdbclient | esdbclient
  DAOJIA_ESDB_ADDR      HOST:PORT of a server run with --insecure
  DAOJIA_TLS_ADDR       HOST:PORT of a server run with TLS and tokens (name it as in the cert)
  DAOJIA_TLS_CA         the server's self-signed certificate (PEM), the client's root cert
  DAOJIA_TLS_ADMIN      ACTOR:TOKEN of an admin token
  DAOJIA_TLS_ANALYTICS  ACTOR:TOKEN of an analytics token
  DAOJIA_TLS_OTHER      ACTOR:TOKEN of a token of another role (customer-app)

Every stream and event type is named after a fresh run id, so the tests do not see each
other's events, and a rerun against the same server does not see the last run's.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import sys
import threading
import unittest
import uuid

PACKAGE = os.environ.get("DAOJIA_ESDB_PACKAGE", "kurrentdbclient")

# --- The shim: one name for each thing the two packages spell differently. ---
if PACKAGE == "kurrentdbclient":
    from kurrentdbclient import (
        CaughtUp,
        Checkpoint,
        KurrentDBClient as Client,
        NewEvent,
        StreamState,
    )
    from kurrentdbclient.exceptions import (
        AccessDeniedError as AccessDenied,
        FailedPreconditionError,
        GrpcError,
        NotFoundError as NotFound,
        StreamIsDeletedError as StreamIsDeleted,
        UnauthenticatedError as Unauthenticated,
        WrongCurrentVersionError as WrongCurrentVersion,
    )

    # Both map a batch append's AccessDenied (answered per batch, as EventStoreDB does).
    BatchAccessDenied = AccessDenied
    SCHEME = "kdb"
    HAS_PREFIX_FILTER = True
    # Both packages map "is deleted" to StreamIsDeleted(Error) on reads and batch appends, but
    # a single-event Append's FAILED_PRECONDITION "Event stream 's' is deleted." (what
    # EventStoreDB sends) only to FailedPrecondition(Error): both count, checked by text.
    APPEND_DELETED = (StreamIsDeleted, FailedPreconditionError)
elif PACKAGE == "esdbclient":
    from esdbclient import (
        CaughtUp,
        Checkpoint,
        EventStoreDBClient as Client,
        NewEvent,
        StreamState,
    )
    from esdbclient.exceptions import (
        AccessDeniedError as BatchAccessDenied,
        FailedPrecondition as FailedPreconditionError,
        GrpcError,
        NotFound,
        StreamIsDeleted,
        WrongCurrentVersion,
    )

    # esdbclient maps neither PERMISSION_DENIED nor UNAUTHENTICATED on unary calls: they come
    # out as its GrpcError holding the grpc error, checked by code below. A batch append's
    # AccessDenied (answered per batch, as EventStoreDB does) it maps to AccessDeniedError.
    AccessDenied = Unauthenticated = None
    SCHEME = "esdb"
    HAS_PREFIX_FILTER = False
    APPEND_DELETED = (StreamIsDeleted, FailedPreconditionError)
else:
    sys.exit(f"DAOJIA_ESDB_PACKAGE must be kurrentdbclient or esdbclient, not {PACKAGE!r}")

# How long any one call may take: a subscription that should deliver but does not fails the
# test with a deadline error instead of hanging it.
DEADLINE_S = 15.0

RUN = uuid.uuid4().hex[:10]
_counter = itertools.count()


def fresh_stream(kind: str = "s") -> str:
    """A stream name nobody has used: `pyt<run><kind>-<uuid>`."""
    return f"pyt{RUN}{kind}-{uuid.uuid4()}"


def event(kind: str = "Happened", n: int | None = None) -> NewEvent:
    """A JSON event of type `PyT<run><kind>` whose data carries a serial number."""
    n = next(_counter) if n is None else n
    return NewEvent(type=f"PyT{RUN}{kind}", data=f'{{"n": {n}}}'.encode(), metadata=b'{"m": 1}')


def grpc_code(error: BaseException) -> str | None:
    """The gRPC status code name inside a client exception, if any."""
    for candidate in [error, *error.args]:
        code = getattr(candidate, "code", None)
        if callable(code):
            try:
                return code().name
            except Exception:  # noqa: BLE001 - not a grpc call after all
                continue
    return None


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (run the tests with tests/python/run.sh)")
    return value


def insecure_client() -> Client:
    return Client(f"{SCHEME}://{env('DAOJIA_ESDB_ADDR')}?Tls=false")


def ids(events) -> list[uuid.UUID]:
    return [e.id for e in events]


class ClientTest(unittest.TestCase):
    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = insecure_client()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()

    # Helpers.
    def append(self, stream, events, current_version=StreamState.ANY):
        return self.client.append_to_stream(
            stream, events=events, current_version=current_version, timeout=DEADLINE_S
        )

    def read(self, stream, **kw) -> list:
        return list(self.client.get_stream(stream, timeout=DEADLINE_S, **kw))

    def read_all(self, **kw) -> list:
        return list(self.client.read_all(timeout=DEADLINE_S, **kw))

    def our_commit_position(self) -> int:
        """The commit position of the last event this run appended (by event type: the
        server's own tasks, such as the reactor's checkpoints, append now and then)."""
        return self.client.get_commit_position(filter_include=[f"PyT{RUN}.*"])

    def stream_filter(self, stream: str) -> dict:
        """Filter options matching exactly one stream by name (a regex)."""
        return {"filter_include": [re.escape(stream)], "filter_by_stream_name": True}

    def next_items(self, subscription, n: int) -> list:
        """The next `n` items of a subscription (events, checkpoints, caught-up markers)."""
        return [next(subscription) for _ in range(n)]


class Appends(ClientTest):
    def test_single_and_batch_appends_give_revisions_and_increasing_positions(self):
        stream = fresh_stream()
        one = event()
        p1 = self.append(stream, one, StreamState.NO_STREAM)  # Append (one event)
        batch = [event(), event(), event()]
        p2 = self.append(stream, batch, 0)  # BatchAppend (a list)
        p3 = self.append(stream, [event()], StreamState.EXISTS)
        self.assertGreater(p2, p1)
        self.assertGreater(p3, p2)
        recorded = self.read(stream)
        self.assertEqual(ids(recorded)[:4], ids([one, *batch]))
        self.assertEqual([e.stream_position for e in recorded], [0, 1, 2, 3, 4])
        self.assertEqual(self.client.get_current_version(stream, timeout=DEADLINE_S), 4)
        first = recorded[0]
        self.assertEqual(first.stream_name, stream)
        self.assertEqual(first.type, one.type)
        self.assertEqual(first.data, one.data)
        self.assertEqual(first.metadata, one.metadata)
        self.assertEqual(first.content_type, "application/json")
        self.assertEqual(first.commit_position, p1)
        self.assertEqual(recorded[-1].commit_position, p3)
        # The batch's last event carries the position the batch append answered.
        self.assertEqual(recorded[3].commit_position, p2)
        self.assertIsNotNone(first.recorded_at)

    def test_every_expectation_with_append_and_batch_append(self):
        for batch in (False, True):
            with self.subTest(batch=batch):
                wrap = (lambda e: [e]) if batch else (lambda e: e)
                stream = fresh_stream()
                # exists on a missing stream: wrong version.
                with self.assertRaises(WrongCurrentVersion):
                    self.append(stream, wrap(event()), StreamState.EXISTS)
                # exact on a missing stream: wrong version.
                with self.assertRaises(WrongCurrentVersion):
                    self.append(stream, wrap(event()), 0)
                self.append(stream, wrap(event()), StreamState.NO_STREAM)
                # no_stream on an existing stream: wrong version.
                with self.assertRaises(WrongCurrentVersion):
                    self.append(stream, wrap(event()), StreamState.NO_STREAM)
                self.append(stream, wrap(event()), StreamState.EXISTS)
                self.append(stream, wrap(event()), 1)
                # exact, behind and ahead: wrong version.
                for wrong in (1, 5):
                    with self.assertRaises(WrongCurrentVersion):
                        self.append(stream, wrap(event()), wrong)
                self.append(stream, wrap(event()), StreamState.ANY)
                self.assertEqual(self.client.get_current_version(stream), 3)
                self.assertEqual(len(self.read(stream)), 4)

    def test_any_on_a_missing_stream_creates_it(self):
        for batch in (False, True):
            with self.subTest(batch=batch):
                stream = fresh_stream()
                self.append(stream, [event()] if batch else event(), StreamState.ANY)
                self.assertEqual(self.client.get_current_version(stream), 0)

    def test_idempotent_retries_give_the_same_commit_position_and_write_nothing(self):
        for batch in (False, True):
            for expectation in ("no_stream", "exact", "any"):
                with self.subTest(batch=batch, expectation=expectation):
                    stream = fresh_stream()
                    if expectation == "exact":
                        self.append(stream, event(), StreamState.NO_STREAM)
                        expected = 0
                    elif expectation == "no_stream":
                        expected = StreamState.NO_STREAM
                    else:
                        expected = StreamState.ANY
                    events = [event(), event()] if batch else event()
                    first = self.append(stream, events, expected)
                    again = self.append(stream, events, expected)
                    self.assertEqual(again, first)
                    before = 1 if expectation == "exact" else 0
                    self.assertEqual(len(self.read(stream)), before + (2 if batch else 1))
                    self.assertEqual(self.our_commit_position(), first)

    def test_an_empty_batch_with_any_is_accepted(self):
        stream = fresh_stream()
        self.append(stream, event(), StreamState.NO_STREAM)
        self.append(stream, [], StreamState.ANY)
        self.assertEqual(len(self.read(stream)), 1)

    def test_get_commit_position_is_the_last_non_system_event(self):
        stream = fresh_stream()
        position = self.append(stream, [event(), event()])
        self.assertEqual(self.our_commit_position(), position)
        # The server's own background tasks may have appended since: the answer is the
        # position of the last non-system event there is.
        head = self.client.get_commit_position()
        self.assertGreaterEqual(head, position)
        (at_head,) = self.read_all(commit_position=head, limit=1, filter_exclude=())
        self.assertEqual(at_head.commit_position, head)
        self.assertFalse(at_head.type.startswith("$"))
        # A metadata event ($metadata in $$stream) comes later but is a system event.
        self.client.set_stream_metadata(stream, metadata={"k": 1})
        (meta,) = self.read_all(backwards=True, limit=1, filter_exclude=())
        self.assertEqual((meta.stream_name, meta.type), (f"$${stream}", "$metadata"))
        self.assertNotEqual(self.client.get_commit_position(), meta.commit_position)
        self.assertGreaterEqual(
            self.client.get_commit_position(filter_exclude=()), meta.commit_position
        )
        self.assertEqual(self.our_commit_position(), position)

    def test_a_retry_after_later_appends_still_answers_the_first_result(self):
        stream = fresh_stream()
        first = event()
        p1 = self.append(stream, [first], StreamState.NO_STREAM)
        self.append(stream, [event()], 0)
        # The same id at the same expectation (no stream): the original result, nothing new.
        self.assertEqual(self.append(stream, [first], StreamState.NO_STREAM), p1)
        self.assertEqual(len(self.read(stream)), 2)

    def test_a_retry_that_only_partly_matches_is_a_wrong_version(self):
        stream = fresh_stream()
        events = [event(), event()]
        self.append(stream, events, StreamState.NO_STREAM)
        with self.assertRaises(WrongCurrentVersion):
            self.append(stream, [*events, event()], StreamState.NO_STREAM)
        self.assertEqual(len(self.read(stream)), 2)

    def test_binary_and_empty_payloads_and_the_recorded_time(self):
        stream = fresh_stream()
        blob = NewEvent(
            type=f"PyT{RUN}Blob",
            data=bytes(range(256)),
            metadata=b"\x00\xff",
            content_type="application/octet-stream",
        )
        empty = NewEvent(type=f"PyT{RUN}Empty", data=b"")
        before = dt.datetime.now(dt.timezone.utc)
        self.append(stream, [blob, empty])
        got_blob, got_empty = self.read(stream)
        self.assertEqual(got_blob.data, blob.data)
        self.assertEqual(got_blob.metadata, blob.metadata)
        self.assertEqual(got_blob.content_type, "application/octet-stream")
        self.assertEqual((got_empty.data, got_empty.metadata), (b"", b""))
        # `created` is 100 ns ticks since the Unix epoch: the clients turn it into the time.
        recorded = got_blob.recorded_at
        if recorded.tzinfo is None:
            recorded = recorded.astimezone()
        self.assertLess(abs((recorded - before).total_seconds()), 60, recorded)

    def test_a_large_batch_is_one_atomic_append(self):
        stream = fresh_stream()
        events = [event() for _ in range(500)]
        position = self.append(stream, events, StreamState.NO_STREAM)
        recorded = self.read(stream)
        self.assertEqual(ids(recorded), ids(events))
        self.assertEqual(recorded[-1].commit_position, position)


class Reads(ClientTest):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # Two streams of one kind (A), one of another (B), with two event types.
        cls.a1, cls.a2, cls.b1 = fresh_stream("a"), fresh_stream("a"), fresh_stream("b")
        cls.events = []
        for stream, kind in [
            (cls.a1, "Started"),
            (cls.b1, "Started"),
            (cls.a2, "Started"),
            (cls.a1, "Finished"),
            (cls.b1, "Finished"),
            (cls.a1, "Finished"),
        ]:
            e = event(kind)
            position = cls.client.append_to_stream(
                stream, events=e, current_version=StreamState.ANY
            )
            cls.events.append((stream, e, position))
        cls.all_ids = [e.id for _, e, _ in cls.events]
        cls.first_position = cls.events[0][2]

    def ours(self, recorded) -> list:
        """`recorded` restricted to this class's events, as ids."""
        mine = set(self.all_ids)
        return [e.id for e in recorded if e.id in mine]

    def test_stream_forwards_backwards_and_from_a_revision(self):
        a1 = [e.id for s, e, _ in self.events if s == self.a1]
        self.assertEqual(ids(self.read(self.a1)), a1)
        self.assertEqual(ids(self.read(self.a1, backwards=True)), a1[::-1])
        self.assertEqual(ids(self.read(self.a1, stream_position=1)), a1[1:])
        self.assertEqual(ids(self.read(self.a1, stream_position=1, backwards=True)), a1[1::-1])
        self.assertEqual(ids(self.read(self.a1, limit=2)), a1[:2])
        self.assertEqual(ids(self.read(self.a1, backwards=True, limit=1)), a1[-1:])
        self.assertEqual(self.read(self.a1, stream_position=9), [])

    def test_a_missing_stream_is_not_found(self):
        with self.assertRaises(NotFound):
            self.read(fresh_stream())
        self.assertEqual(self.client.get_current_version(fresh_stream()), StreamState.NO_STREAM)

    def test_all_forwards_from_a_position_is_inclusive_and_in_order(self):
        recorded = self.read_all(commit_position=self.first_position)
        self.assertEqual(self.ours(recorded), self.all_ids)
        self.assertEqual(recorded[0].id, self.all_ids[0])
        positions = [e.commit_position for e in recorded]
        self.assertEqual(positions, sorted(set(positions)))
        third = self.events[2][2]
        self.assertEqual(self.ours(self.read_all(commit_position=third)), self.all_ids[2:])
        self.assertEqual(
            self.ours(self.read_all(commit_position=self.first_position, limit=2)),
            self.all_ids[:2],
        )

    def test_all_backwards_from_the_end_and_from_a_position(self):
        recorded = self.read_all(backwards=True, limit=50)
        positions = [e.commit_position for e in recorded]
        self.assertEqual(positions, sorted(set(positions), reverse=True))
        self.assertEqual(self.ours(recorded)[: len(self.all_ids)], self.all_ids[::-1])
        fourth = self.events[3][2]
        back = self.read_all(backwards=True, commit_position=fourth, limit=10)
        # As in EventStoreDB, reading backwards from a position excludes the event at it: the
        # events before the fourth come, newest first.
        self.assertTrue(all(e.commit_position < fourth for e in back), back[:1])
        self.assertEqual(self.ours(back)[:3], self.all_ids[2::-1])

    def test_filters_by_stream_name_regex(self):
        kind_a = f"pyt{RUN}a-.*"
        recorded = self.read_all(
            commit_position=self.first_position,
            filter_include=[kind_a],
            filter_by_stream_name=True,
        )
        expected = [e.id for s, e, _ in self.events if s in (self.a1, self.a2)]
        self.assertEqual(ids(recorded), expected)
        self.assertTrue(all(e.stream_name.startswith(f"pyt{RUN}a-") for e in recorded))
        # Excluding kind A (and the defaults' system streams): B's events only among ours.
        recorded = self.read_all(
            commit_position=self.first_position,
            filter_exclude=[kind_a, r"\$.+"],
            filter_by_stream_name=True,
        )
        self.assertEqual(self.ours(recorded), [e.id for s, e, _ in self.events if s == self.b1])

    def test_filters_by_event_type_regex(self):
        recorded = self.read_all(
            commit_position=self.first_position, filter_include=[f"PyT{RUN}Fin.*"]
        )
        self.assertEqual(ids(recorded), [e.id for _, e, _ in self.events if "Finished" in e.type])
        recorded = self.read_all(
            commit_position=self.first_position,
            filter_include=[f"PyT{RUN}Started", f"PyT{RUN}Finished"],
            backwards=False,
        )
        self.assertEqual(ids(recorded), self.all_ids)

    def test_filters_by_prefix(self):
        if HAS_PREFIX_FILTER:
            by_prefix = lambda prefixes, **kw: self.read_all(  # noqa: E731
                commit_position=self.first_position,
                filter_include=prefixes,
                filter_by_prefix=True,
                **kw,
            )
        else:  # esdbclient sends regexes only: a prefix is `^prefix.*`.
            by_prefix = lambda prefixes, **kw: self.read_all(  # noqa: E731
                commit_position=self.first_position,
                filter_include=[re.escape(p) + ".*" for p in prefixes],
                **kw,
            )
        recorded = by_prefix([f"pyt{RUN}b-"], filter_by_stream_name=True)
        self.assertEqual(ids(recorded), [e.id for s, e, _ in self.events if s == self.b1])
        recorded = by_prefix([f"pyt{RUN}b-", self.a2], filter_by_stream_name=True)
        self.assertEqual(
            ids(recorded), [e.id for s, e, _ in self.events if s in (self.b1, self.a2)]
        )
        recorded = by_prefix([f"PyT{RUN}Sta"])
        self.assertEqual(ids(recorded), [e.id for _, e, _ in self.events if "Started" in e.type])

    def test_the_default_filter_excludes_system_events(self):
        self.client.set_stream_metadata(self.b1, metadata={"$maxCount": 100})
        everything = self.read_all(commit_position=self.first_position, filter_exclude=())
        metadata_events = [e for e in everything if e.stream_name == f"$${self.b1}"]
        self.assertEqual([e.type for e in metadata_events], ["$metadata"])
        default = self.read_all(commit_position=self.first_position)
        self.assertFalse(any(e.type.startswith("$") for e in default))
        self.assertEqual(self.ours(default), self.all_ids)


class Subscriptions(ClientTest):
    def test_all_from_the_start_history_caught_up_then_live_then_stop(self):
        stream = fresh_stream()
        history = [event(), event()]
        self.append(stream, history)
        sub = self.client.subscribe_to_all(
            include_caught_up=True, timeout=DEADLINE_S, **self.stream_filter(stream)
        )
        items = self.next_items(sub, 3)
        self.assertEqual(ids(items[:2]), ids(history))
        self.assertIsInstance(items[2], CaughtUp)
        live = event()
        position = self.append(stream, live)
        got = next(sub)
        self.assertEqual(got.id, live.id)
        self.assertEqual(got.commit_position, position)
        sub.stop()
        with self.assertRaises(StopIteration):
            next(sub)

    def test_all_unfiltered_sees_everything_in_order(self):
        stream = fresh_stream()
        position = self.append(stream, [event(), event()])
        sub = self.client.subscribe_to_all(filter_exclude=(), timeout=DEADLINE_S)
        last = 0
        for e in sub:
            self.assertGreater(e.commit_position, last)
            last = e.commit_position
            if last >= position:
                break
        sub.stop()
        self.assertEqual(last, position)

    def test_all_from_a_position_is_exclusive(self):
        stream = fresh_stream()
        first, second, third = event(), event(), event()
        p1 = self.append(stream, first)
        self.append(stream, second)
        sub = self.client.subscribe_to_all(
            commit_position=p1, timeout=DEADLINE_S, **self.stream_filter(stream)
        )
        self.assertEqual(next(sub).id, second.id)
        self.append(stream, third)
        self.assertEqual(next(sub).id, third.id)
        sub.stop()

    def test_all_from_the_end_sees_only_new_events(self):
        stream = fresh_stream()
        self.append(stream, [event(), event()])
        sub = self.client.subscribe_to_all(
            from_end=True, include_caught_up=True, timeout=DEADLINE_S, **self.stream_filter(stream)
        )
        first = next(sub)
        # A server may say it is caught up at once; then the live event follows.
        if isinstance(first, CaughtUp):
            first = None
        new = event()
        self.append(stream, new)
        got = first or next(sub)
        self.assertEqual(got.id, new.id)
        sub.stop()

    def test_stream_from_start_from_a_revision_and_from_the_end(self):
        stream = fresh_stream()
        history = [event(), event(), event()]
        self.append(stream, history)
        from_start = self.client.subscribe_to_stream(
            stream, include_caught_up=True, timeout=DEADLINE_S
        )
        from_rev = self.client.subscribe_to_stream(stream, stream_position=1, timeout=DEADLINE_S)
        from_end = self.client.subscribe_to_stream(stream, from_end=True, timeout=DEADLINE_S)
        items = self.next_items(from_start, 4)
        self.assertEqual(ids(items[:3]), ids(history))
        self.assertEqual([e.stream_position for e in items[:3]], [0, 1, 2])
        self.assertIsInstance(items[3], CaughtUp)
        # From revision 1: the events after it.
        self.assertEqual(next(from_rev).id, history[2].id)
        new = event()
        self.append(stream, new, 2)
        for sub in (from_start, from_rev, from_end):
            got = next(sub)
            self.assertEqual((got.id, got.stream_position), (new.id, 3))
            sub.stop()

    def test_stream_subscription_to_a_missing_stream_waits_for_it(self):
        stream = fresh_stream()
        sub = self.client.subscribe_to_stream(stream, timeout=DEADLINE_S)
        new = event()
        self.append(stream, new, StreamState.NO_STREAM)
        self.assertEqual(next(sub).id, new.id)
        sub.stop()

    def test_checkpoints_on_a_filtered_all_subscription(self):
        stream = fresh_stream()
        start = self.append(stream, event("Before"))
        # Matches one event type that is appended last; window 2 × multiplier 1 = a checkpoint
        # every two considered events at most.
        sub = self.client.subscribe_to_all(
            commit_position=start,
            filter_include=[f"PyT{RUN}Wanted"],
            include_checkpoints=True,
            window_size=2,
            checkpoint_interval_multiplier=1,
            timeout=DEADLINE_S,
        )
        for _ in range(5):
            self.append(stream, [event("Unwanted"), event("Unwanted")])
        wanted = event("Wanted")
        end = self.append(stream, wanted)
        checkpoints = []
        for item in sub:
            if isinstance(item, Checkpoint):
                checkpoints.append(item.commit_position)
                continue
            self.assertEqual(item.id, wanted.id)
            break
        sub.stop()
        self.assertTrue(checkpoints, "no checkpoint before the matching event")
        self.assertEqual(checkpoints, sorted(checkpoints))
        self.assertTrue(all(start <= c <= end for c in checkpoints), (start, checkpoints, end))
        self.assertGreater(checkpoints[-1], start)


    def test_no_gap_or_repeat_from_history_to_live_under_concurrent_appends(self):
        stream = fresh_stream()
        history = [event() for _ in range(300)]
        self.append(stream, history)
        live = [event() for _ in range(300)]
        sub = self.client.subscribe_to_all(timeout=60, **self.stream_filter(stream))
        writer_error: list[BaseException] = []

        def writer():
            try:
                for i in range(0, len(live), 3):
                    self.append(stream, live[i : i + 3])
            except BaseException as e:  # noqa: BLE001 - reported by the test thread
                writer_error.append(e)

        thread = threading.Thread(target=writer)
        thread.start()
        got = [next(sub) for _ in range(len(history) + len(live))]
        thread.join()
        sub.stop()
        self.assertEqual(writer_error, [])
        self.assertEqual(ids(got), ids(history + live))
        self.assertEqual([e.stream_position for e in got], list(range(600)))

    def test_checkpoints_while_catching_up_and_resuming_from_one_loses_nothing(self):
        stream = fresh_stream()
        start = self.append(stream, event("Before"))
        end = self.append(stream, [event("Unwanted") for _ in range(20)])
        wanted = f"PyT{RUN}Resumed{uuid.uuid4().hex[:6]}"
        sub = self.client.subscribe_to_all(
            commit_position=start,
            filter_include=[wanted],
            include_checkpoints=True,
            include_caught_up=True,
            window_size=4,
            checkpoint_interval_multiplier=1,
            timeout=DEADLINE_S,
        )
        checkpoints = []
        for item in sub:
            if isinstance(item, CaughtUp):
                break
            self.assertIsInstance(item, Checkpoint)
            checkpoints.append(item.commit_position)
        sub.stop()
        self.assertTrue(checkpoints, "no checkpoint while catching up over 20 unmatched events")
        self.assertEqual(checkpoints, sorted(checkpoints))
        self.assertTrue(all(start <= c for c in checkpoints), (start, checkpoints))
        # A consumer that stored the last checkpoint resumes from it (exclusive) and gets the
        # next matching event, appended right after: nothing between is lost.
        new = NewEvent(type=wanted, data=b"{}")
        position = self.append(stream, new)
        self.assertLess(checkpoints[-1], position)
        resumed = self.client.subscribe_to_all(
            commit_position=checkpoints[-1], filter_include=[wanted], timeout=DEADLINE_S
        )
        got = next(resumed)
        resumed.stop()
        self.assertEqual((got.id, got.commit_position), (new.id, position))
        self.assertGreater(position, end)

    def test_catch_up_checkpoints_come_every_window_times_multiplier_considered_events(self):
        stream = fresh_stream()
        start = self.append(stream, event("Before"))
        self.append(stream, [event("Unwanted") for _ in range(20)])
        sub = self.client.subscribe_to_all(
            commit_position=start,
            filter_include=[f"PyT{RUN}NeverWritten"],
            include_checkpoints=True,
            include_caught_up=True,
            window_size=4,
            checkpoint_interval_multiplier=1,
            timeout=DEADLINE_S,
        )
        checkpoints = []
        for item in sub:
            if isinstance(item, CaughtUp):
                break
            checkpoints.append(item.commit_position)
        sub.stop()
        self.assertGreaterEqual(len(checkpoints), 4, checkpoints)

    def test_caught_up_comes_at_once_when_there_is_no_history(self):
        stream = fresh_stream()
        position = self.append(stream, event())
        sub = self.client.subscribe_to_all(
            commit_position=position,
            include_caught_up=True,
            timeout=DEADLINE_S,
            **self.stream_filter(stream),
        )
        self.assertIsInstance(next(sub), CaughtUp)
        new = event()
        self.append(stream, new)
        self.assertEqual(next(sub).id, new.id)
        sub.stop()


class Deletes(ClientTest):
    def test_delete_then_not_found_then_append_reopens_with_continued_revisions(self):
        stream = fresh_stream()
        self.append(stream, [event(), event()], StreamState.NO_STREAM)
        with self.assertRaises(WrongCurrentVersion):
            self.client.delete_stream(stream, current_version=0)
        self.client.delete_stream(stream, current_version=1)
        with self.assertRaises(NotFound):
            self.read(stream)
        self.assertEqual(self.client.get_current_version(stream), StreamState.NO_STREAM)
        # Deleted events are gone from the stream but still in $all.
        again = event()
        self.append(stream, again, StreamState.NO_STREAM)
        recorded = self.read(stream)
        self.assertEqual(ids(recorded), [again.id])
        self.assertEqual(recorded[0].stream_position, 2)
        self.assertEqual(self.client.get_current_version(stream), 2)

    def test_delete_with_any_and_a_missing_stream(self):
        stream = fresh_stream()
        self.append(stream, event())
        self.client.delete_stream(stream, current_version=StreamState.ANY)
        with self.assertRaises(NotFound):
            self.read(stream)
        with self.assertRaises(NotFound):
            self.client.delete_stream(fresh_stream(), current_version=0)

    def test_tombstone_then_append_and_read_fail_as_deleted(self):
        stream = fresh_stream()
        self.append(stream, [event(), event()])
        with self.assertRaises(WrongCurrentVersion):
            self.client.tombstone_stream(stream, current_version=0)
        self.client.tombstone_stream(stream, current_version=1)
        for batch in (False, True):
            with self.subTest(batch=batch):
                with self.assertRaises(APPEND_DELETED) as caught:
                    self.append(stream, [event()] if batch else event(), StreamState.ANY)
                if not isinstance(caught.exception, StreamIsDeleted):
                    self.assertIn("is deleted", str(caught.exception))
        with self.assertRaises(StreamIsDeleted):
            self.read(stream)
        with self.assertRaises(StreamIsDeleted):
            self.client.delete_stream(stream, current_version=StreamState.ANY)

    def test_tombstone_a_missing_stream_with_any(self):
        stream = fresh_stream()
        self.client.tombstone_stream(stream, current_version=StreamState.ANY)
        with self.assertRaises(APPEND_DELETED) as caught:
            self.append(stream, event(), StreamState.NO_STREAM)
        if not isinstance(caught.exception, StreamIsDeleted):
            self.assertIn("is deleted", str(caught.exception))
        with self.assertRaises(StreamIsDeleted):
            self.read(stream)


class DeleteCornersAsInEventStoreDB(ClientTest):
    """What EventStoreDB answers in the corners of delete and tombstone (the clients' own test
    suites run these against a real server)."""

    def test_deleting_a_missing_stream_expecting_it_or_a_revision_is_not_found(self):
        for expected in (StreamState.EXISTS, 0):
            with self.subTest(expected=expected), self.assertRaises(NotFound):
                self.client.delete_stream(fresh_stream(), current_version=expected)
        with self.assertRaises(NotFound):
            self.client.tombstone_stream(fresh_stream(), current_version=StreamState.EXISTS)

    def test_deleting_a_missing_stream_with_any_or_no_stream_is_not_found(self):
        for expected in (StreamState.ANY, StreamState.NO_STREAM):
            with self.assertRaises(NotFound):
                self.client.delete_stream(fresh_stream(), current_version=expected)

    def test_a_deleted_stream_can_be_deleted_again_and_continues_from_its_last_revision(self):
        stream = fresh_stream()
        self.append(stream, [event(), event()], StreamState.NO_STREAM)
        self.client.delete_stream(stream, current_version=StreamState.ANY)
        self.client.delete_stream(stream, current_version=StreamState.ANY)
        with self.assertRaises(StreamIsDeleted):
            self.client.delete_stream(stream, current_version=StreamState.EXISTS)
        # The deleted stream's last revision (1) is still the expected version to append at.
        with self.assertRaises(WrongCurrentVersion):
            self.append(stream, [event()], 0)
        again = event()
        self.append(stream, [again], 1)
        recorded = self.read(stream)
        self.assertEqual([(e.id, e.stream_position) for e in recorded], [(again.id, 2)])

    def test_a_tombstoned_stream_cannot_be_tombstoned_again_nor_read(self):
        stream = fresh_stream()
        self.append(stream, [event(), event()])
        self.client.tombstone_stream(stream, current_version=StreamState.EXISTS)
        for expected in (StreamState.ANY, StreamState.NO_STREAM):
            with self.subTest(expected=expected), self.assertRaises(StreamIsDeleted):
                self.client.tombstone_stream(stream, current_version=expected)
        with self.assertRaises(StreamIsDeleted):
            self.client.get_current_version(stream)

    def test_deleting_writes_truncate_before_into_the_metadata(self):
        stream = fresh_stream()
        self.append(stream, [event(), event()], StreamState.NO_STREAM)
        self.assertEqual(self.client.get_stream_metadata(stream), ({}, StreamState.NO_STREAM))
        self.client.delete_stream(stream, current_version=StreamState.EXISTS)
        metadata, version = self.client.get_stream_metadata(stream)
        self.assertIn(metadata.get("$tb"), (2, 2**63 - 1), metadata)
        self.client.set_stream_metadata(
            stream, metadata={**metadata, "foo": "bar"}, current_version=version
        )
        metadata, version = self.client.get_stream_metadata(stream)
        self.assertEqual(metadata["foo"], "bar")
        self.assertIn(metadata.get("$tb"), (2, 2**63 - 1), metadata)
        self.client.tombstone_stream(stream, current_version=StreamState.ANY)
        # EventStoreDB still accepts metadata writes to a tombstoned stream.
        self.client.set_stream_metadata(stream, metadata={"x": 1}, current_version=StreamState.ANY)

    def test_tombstoning_hides_the_metadata(self):
        stream = fresh_stream()
        self.append(stream, [event()])
        self.client.set_stream_metadata(stream, metadata={"before": 1})
        self.client.tombstone_stream(stream, current_version=StreamState.ANY)
        with self.assertRaises(StreamIsDeleted):
            self.client.get_stream_metadata(stream)
        self.client.set_stream_metadata(stream, metadata={"x": 1}, current_version=StreamState.ANY)
        with self.assertRaises(StreamIsDeleted):
            self.client.get_stream_metadata(stream)


class Metadata(ClientTest):
    def test_get_and_set_stream_metadata(self):
        stream = fresh_stream()
        self.assertEqual(
            self.client.get_stream_metadata(stream), ({}, StreamState.NO_STREAM)
        )
        self.append(stream, event())
        self.client.set_stream_metadata(stream, metadata={"owner": "py", "$maxCount": 10})
        self.assertEqual(
            self.client.get_stream_metadata(stream), ({"owner": "py", "$maxCount": 10}, 0)
        )
        self.client.set_stream_metadata(stream, metadata={"owner": "py2"}, current_version=0)
        self.assertEqual(self.client.get_stream_metadata(stream), ({"owner": "py2"}, 1))
        with self.assertRaises(WrongCurrentVersion):
            self.client.set_stream_metadata(stream, metadata={"x": 1}, current_version=0)
        # The stream itself is untouched.
        self.assertEqual(len(self.read(stream)), 1)

    def test_truncate_before_hides_earlier_events(self):
        stream = fresh_stream()
        events = [event(), event(), event()]
        self.append(stream, events)
        self.client.set_stream_metadata(stream, metadata={"$tb": 2})
        self.assertEqual(ids(self.read(stream)), ids(events[2:]))


class ClusterServices(ClientTest):
    def test_gossip_has_one_leader_member_at_the_servers_address(self):
        members = self.client.read_gossip()
        self.assertEqual(len(members), 1, members)
        self.assertEqual(members[0].state, "NODE_STATE_LEADER")
        self.assertEqual(members[0].port, int(env("DAOJIA_ESDB_ADDR").rsplit(":", 1)[1]))

    def test_two_seeds_discover_the_leader_through_gossip_then_work(self):
        addr = env("DAOJIA_ESDB_ADDR")
        client = Client(f"{SCHEME}://{addr},{addr}?Tls=false&MaxDiscoverAttempts=2")
        try:
            stream = fresh_stream()
            new = event()
            client.append_to_stream(stream, events=[new], current_version=StreamState.NO_STREAM)
            self.assertEqual(ids(client.get_stream(stream)), [new.id])
        finally:
            client.close()

    def test_persistent_subscriptions_list_is_empty(self):
        self.assertEqual(list(self.client.list_subscriptions()), [])


class Tls(unittest.TestCase):
    """A server with TLS and tokens: Basic credentials ACTOR:TOKEN map to daojia roles."""

    def client(self, credentials: str) -> Client:
        with open(env("DAOJIA_TLS_CA")) as f:
            ca = f.read()
        return Client(
            f"{SCHEME}://{credentials}@{env('DAOJIA_TLS_ADDR')}?Tls=true",
            root_certificates=ca,
        )

    def assert_refused(self, call, mapped, code: str) -> None:
        with self.assertRaises(Exception) as caught:
            call()
        error = caught.exception
        if mapped is not None:
            self.assertIsInstance(error, mapped)
        else:
            self.assertIsInstance(error, GrpcError)
            self.assertEqual(grpc_code(error), code, repr(error))

    def test_admin_writes_and_analytics_reads_but_cannot_write(self):
        admin = self.client(env("DAOJIA_TLS_ADMIN"))
        analytics = self.client(env("DAOJIA_TLS_ANALYTICS"))
        try:
            stream = fresh_stream("tls")
            written = [event(), event()]
            position = admin.append_to_stream(
                stream, events=written, current_version=StreamState.NO_STREAM
            )
            self.assertEqual(ids(analytics.get_stream(stream)), ids(written))
            read = list(
                analytics.read_all(commit_position=position, filter_include=[f"PyT{RUN}.*"])
            )
            self.assertEqual(ids(read), ids(written[1:]))
            sub = analytics.subscribe_to_stream(stream, timeout=DEADLINE_S)
            self.assertEqual(next(sub).id, written[0].id)
            sub.stop()
            # One event goes by Append, a list by BatchAppend.
            for events, mapped in ((event(), AccessDenied), ([event()], BatchAccessDenied)):
                self.assert_refused(
                    lambda: analytics.append_to_stream(
                        stream, events=events, current_version=StreamState.ANY
                    ),
                    mapped,
                    "PERMISSION_DENIED",
                )
            self.assert_refused(
                lambda: analytics.delete_stream(stream, current_version=StreamState.ANY),
                AccessDenied,
                "PERMISSION_DENIED",
            )
            self.assertEqual(len(list(admin.get_stream(stream))), 2)
        finally:
            admin.close()
            analytics.close()

    def test_other_roles_may_not_even_read(self):
        client = self.client(env("DAOJIA_TLS_OTHER"))
        try:
            self.assert_refused(
                lambda: list(client.read_all(limit=1)), AccessDenied, "PERMISSION_DENIED"
            )
        finally:
            client.close()

    def test_a_wrong_password_is_refused(self):
        actor, token = env("DAOJIA_TLS_ANALYTICS").split(":", 1)
        for credentials in (f"{actor}:{token}x", f"someone-else:{token}"):
            with self.subTest(credentials=credentials.split(":")[0]):
                client = self.client(credentials)
                try:
                    self.assert_refused(
                        lambda: client.get_stream(fresh_stream()),
                        Unauthenticated,
                        "UNAUTHENTICATED",
                    )
                finally:
                    client.close()


def main() -> int:
    """Runs every test (or those named on the command line) and ends with `N passed, N failed`."""
    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    names = sys.argv[1:]
    suite = loader.loadTestsFromNames(names, module) if names else loader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    known = len(result.expectedFailures)
    passed = result.testsRun - failed - len(result.skipped) - known
    print(f"{PACKAGE}: {known} known server gap(s) still there (expected failures)")
    print(f"{PACKAGE}: {passed} passed, {failed} failed, {len(result.skipped)} skipped")
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
