import trio
import trio.lowlevel

from trio_rtc.events import Event, EventTarget, event_handler_property


class Thing(EventTarget):
    onping = event_handler_property["Thing"]("ping")


async def test_plain_async_and_attribute_handlers_all_run() -> None:
    seen: list[str] = []
    thing = Thing()

    def plain(event: Event) -> None:
        seen.append("plain:" + event.type)

    async def later(event: Event) -> None:
        await trio.lowlevel.checkpoint()
        seen.append("async:" + event.type)

    thing.onping = lambda e: seen.append("on")
    thing.addEventListener("ping", plain)
    thing.addEventListener("ping", later)
    async with trio.open_nursery() as nursery:
        thing._event_nursery = nursery
        thing.dispatchEvent(Event("ping"))
    assert seen == ["on", "plain:ping", "async:ping"]
    thing.removeEventListener("ping", plain)
    thing.onping = None
    thing._event_nursery = None
    thing.dispatchEvent(Event("ping"))  # the async handler is dropped, not leaked
    assert seen == ["on", "plain:ping", "async:ping"]


async def test_raising_handler_does_not_reach_dispatcher() -> None:
    thing = Thing()

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    thing.addEventListener("ping", broken)
    assert thing.dispatchEvent(Event("ping"))


async def test_wait_until_wakes_on_event() -> None:
    thing = Thing()
    state = {"v": 0}

    async def bump() -> None:
        await trio.sleep(1)
        state["v"] = 1
        thing.dispatchEvent(Event("ping"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bump)
        with trio.fail_after(5):
            await thing.wait_until(lambda: state["v"] == 1)
