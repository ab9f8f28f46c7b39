"""Parts in tasks of the bot's own (bot.part_tasks): a chat is writing exactly while its part runs."""

import asyncio

from bot.part_tasks import PartTasks


def test_a_chat_is_free_the_moment_its_part_returns_and_queued_lines_are_taken_once():
    async def go():
        parts, seen = PartTasks(limit=2), []

        def part(chat):
            async def run():
                assert parts.writing(chat)
                # The first thing to run after this coroutine returns (before the task's done callbacks): a
                # press or a line arriving then must find the chat free, or its turn would be lost.
                asyncio.get_running_loop().call_soon(lambda: seen.append(parts.writing(chat)))
            return run

        assert parts.start(1, part(1)) and parts.start(2, part(2))
        assert not parts.start(3, part(3))  # the limit: two in flight
        parts.line_queued(1)
        await asyncio.sleep(0.01)
        return seen, parts.take_lines(1), parts.take_lines(1), parts.take_lines(2), parts.writing(1), parts.tasks
    seen, first, again, other, writing, tasks = asyncio.run(go())
    assert seen == [False, False] and not writing and not tasks
    assert (first, again, other) == (True, False, False)
