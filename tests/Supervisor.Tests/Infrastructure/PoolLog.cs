using System.Globalization;
using System.Text.RegularExpressions;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// One overlapped recycle as the supervisor's log tells it, by line number: the replacement's "ready", the
/// "Recycled" line (the old worker leaves rotation as it is written), and the old worker's "Worker exiting".
/// </summary>
internal sealed record LoggedRecycle(int Slot, int OldPid, int NewPid, string Reason, int ReplacementReady, int Recycled, int OldExited)
{
    /// <summary>The replacement was ready before the old worker left rotation, which was before it exited.</summary>
    public bool Overlapped => ReplacementReady >= 0 && ReplacementReady < Recycled && Recycled < OldExited;
}

/// <summary>Reads the pool's lifecycle from a supervisor's log, for assertions on the order of its events.</summary>
internal sealed partial class PoolLog(string log)
{
    private readonly string[] _lines = log.Split('\n');

    /// <summary>Every recycle the log reports as done ("Recycled worker …"), with the lines around it (-1: not logged).</summary>
    public IReadOnlyList<LoggedRecycle> Recycles()
    {
        var recycles = new List<LoggedRecycle>();
        for (var i = 0; i < _lines.Length; i++)
        {
            if (RecycledPattern().Match(_lines[i]) is not { Success: true } recycled)
            {
                continue;
            }
            var slot = Number(recycled.Groups[1]);
            var oldPid = Number(recycled.Groups[2]);
            var newPid = Number(recycled.Groups[3]);
            recycles.Add(new LoggedRecycle(slot, oldPid, newPid, recycled.Groups[4].Value,
                ReplacementReady: IndexOf($"Worker {slot} ready (pid: {newPid}, "),
                Recycled: i,
                OldExited: IndexOf($"Worker exiting (pid: {oldPid}): ")));
        }
        return recycles;
    }

    /// <summary>Pids of the workers the log says are being recycled ("Recycling worker …"), done or not.</summary>
    public IReadOnlyList<int> RecyclingPids() =>
        [.. _lines.Select(line => RecyclingPattern().Match(line)).Where(m => m.Success).Select(m => Number(m.Groups[1]))];

    /// <summary>The --max-requests limit a worker drew, from its "Recycling worker" line; null if it was not recycled for it.</summary>
    public int? DrawnRequestLimit(int pid) => (int?)NumberLoggedFor(DrawnLimitPattern(), pid);

    /// <summary>How many requests the supervisor says it gave a worker (its "Worker exiting" line); null if not logged.</summary>
    public long? GivenTo(int pid) => NumberLoggedFor(GivenPattern(), pid);

    /// <summary>How many requests the test app says it saw (its own last line, written once it has stopped); null if not logged.</summary>
    public long? SeenBy(int pid) => NumberLoggedFor(SeenPattern(), pid);

    /// <summary>The line a worker said it was ready on; -1 if it did not.</summary>
    public int ReadyLine(int pid) => Array.FindIndex(_lines, line => ReadyPattern().Match(line) is { Success: true } m && Number(m.Groups[1]) == pid);

    /// <summary>The line the supervisor logged a worker's exit on ("Worker exiting", or its death); -1 if not yet.</summary>
    public int ExitLine(int pid) => Array.FindIndex(_lines, line =>
        line.Contains($"Worker exiting (pid: {pid}): ", StringComparison.Ordinal) || line.Contains($"Worker (pid:{pid}) ", StringComparison.Ordinal));

    /// <summary>The first line from line <paramref name="from"/> on matching <paramref name="pattern"/>; -1 if none does.</summary>
    public int LineMatching(string pattern, int from = 0) => Array.FindIndex(_lines, from, line => Regex.IsMatch(line, pattern));

    // The second group of the first line whose pattern's first group is the pid.
    private long? NumberLoggedFor(Regex pattern, int pid) =>
        _lines.Select(line => pattern.Match(line)).FirstOrDefault(m => m.Success && Number(m.Groups[1]) == pid) is { } match
            ? long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture)
            : null;

    private int IndexOf(string text) => Array.FindIndex(_lines, line => line.Contains(text, StringComparison.Ordinal));

    private static int Number(Group group) => int.Parse(group.Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"Recycled worker (\d+): pid (\d+) replaced by pid (\d+) \((.*)\)$")]
    private static partial Regex RecycledPattern();

    [GeneratedRegex(@"Worker \d+ ready \(pid: (\d+), ")]
    private static partial Regex ReadyPattern();

    [GeneratedRegex(@"Recycling worker \d+ \(pid: (\d+), ")]
    private static partial Regex RecyclingPattern();

    [GeneratedRegex(@"Recycling worker \d+ \(pid: (\d+), generation \d+\): --max-requests reached: (\d+) with jitter")]
    private static partial Regex DrawnLimitPattern();

    [GeneratedRegex(@"Worker exiting \(pid: (\d+)\): .*; given (\d+) requests")]
    private static partial Regex GivenPattern();

    [GeneratedRegex(@"\[worker \d+ pid (\d+)\] saw (\d+) requests")]
    private static partial Regex SeenPattern();
}
