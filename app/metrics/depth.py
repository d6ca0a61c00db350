"""The queue depth per minute, for the charts: its maximum, noted in the minute's hash by whatever
makes the queue grow, in the same script (lifecycle/jobs.py: new jobs, delayed jobs falling due),
and by the workers' samples, which also add to its mean (figures.py).

A burst drained between two samples is thus still drawn at its height. In a script the depth is
arq's queue (`ZCARD`, all priorities) less the jobs of running tasks, which arq keeps in its queue
until they end and only the database can tell: that count is taken from the last sample (written to
`keys.DEPTH_RUNNING`, expiring with the workers that sample it; none without workers, when nothing
runs). A note is off by the starts and ends since that sample, at most the workers' concurrency.
"""

from app.core import keys
from app.metrics.tally import MINUTE_TTL, minute_key

SAMPLE_EVERY = 5.0  # seconds between a worker's samples
RUNNING_TTL_MS = int(3 * SAMPLE_EVERY * 1000)  # the running count outlives a few missed samples, not its workers

# A Lua function for the scripts that queue jobs: note the depth as the maximum so far of the minute
# of `now` (ms); the script passes on NOTE_ARGS as its last three arguments.
NOTE = """
local function note_depth(queue, now, running, prefix, ttl)
  local minute = prefix .. math.floor(now / 60000)
  local depth = math.max(0, redis.call('ZCARD', queue) - (tonumber(redis.call('GET', running)) or 0))
  local most = tonumber(redis.call('HGET', minute, 'depth_max'))
  if not most or depth > most then
    redis.call('HSET', minute, 'depth_max', depth)
    redis.call('EXPIRE', minute, ttl)
  end
end
"""

# A worker's sample. KEYS: the minute's hash, the running count's key; ARGV: the depth, the jobs of
# running tasks in the queue, the hash's TTL (s), the count's TTL (ms).
SAMPLE = """
redis.call('HINCRBY', KEYS[1], 'depth_sum', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'depth_n', 1)
local most = tonumber(redis.call('HGET', KEYS[1], 'depth_max'))
if not most or tonumber(ARGV[1]) > most then redis.call('HSET', KEYS[1], 'depth_max', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
"""


NOTE_ARGS: list[str | int] = [keys.DEPTH_RUNNING, keys.MINUTE_PREFIX, MINUTE_TTL]  # note_depth's last three


def sample_args(now: float, depth: int, running: int) -> tuple[list[str], list[int]]:
    """SAMPLE's keys and arguments for a sample taken at `now` (unix s)."""
    return [minute_key(int(now // 60)), keys.DEPTH_RUNNING], [depth, running, MINUTE_TTL, RUNNING_TTL_MS]
