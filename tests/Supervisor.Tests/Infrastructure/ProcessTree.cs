namespace Supervisor.Tests.Infrastructure;

/// <summary>Processes as /proc tells of them: a process's direct children (how many run, how many are zombies), when one started.</summary>
internal static class ProcessTree
{
    public static IReadOnlyList<(int Pid, char State)> ChildrenOf(int parentPid)
    {
        var children = new List<(int, char)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(directory, "stat"));
            }
            catch (IOException)
            {
                continue;
            }
            // pid (comm) state ppid ...; comm may contain spaces and parentheses.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (int.Parse(fields[1]) == parentPid)
            {
                children.Add((pid, fields[0][0]));
            }
        }
        return children;
    }

    public static int RunningChildren(int parentPid) => ChildrenOf(parentPid).Count(child => child.State != 'Z');

    public static int ZombieChildren(int parentPid) => ChildrenOf(parentPid).Count(child => child.State == 'Z');

    /// <summary>Open sockets and pipes: what leaks when connections or child processes are not cleaned up.
    /// (Other descriptors are mostly assemblies the runtime maps as it loads them.)</summary>
    public static int OpenSocketsAndPipes(int pid) =>
        Directory.GetFiles($"/proc/{pid}/fd")
            .Select(fd => new FileInfo(fd).LinkTarget ?? "")
            .Count(target => target.StartsWith("socket:", StringComparison.Ordinal) || target.StartsWith("pipe:", StringComparison.Ordinal));

    /// <summary>
    /// Seconds since boot, to 10 ms, on the clock <see cref="StartedAfterBoot"/> uses: a moment the test
    /// notes and a process's start can be compared without the latency of any log line between them.
    /// </summary>
    public static double SecondsSinceBoot() =>
        double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>When a process started, in seconds since boot (field 22 of its stat, in clock ticks of 1/100 s on Linux).</summary>
    public static double StartedAfterBoot(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[19], System.Globalization.CultureInfo.InvariantCulture) / 100.0;
    }
}
