using System.Runtime.InteropServices;

namespace Supervisor.Tests.Infrastructure;

/// <summary>Real signals, and whether a process still exists, from the test's side.</summary>
internal static partial class Posix
{
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGHUP = 1;
    public const int SIGSTOP = 19;
    public const int SIGCONT = 18;
    public const int SIGTTIN = 21;
    public const int SIGTTOU = 22;
    public const int SIGTERM = 15;
    public const int SIGUSR1 = 10;
    public const int SIGUSR2 = 12;
    public const int SIGWINCH = 28;

    public static bool Kill(int pid, int signal) => kill(pid, signal) == 0;

    public static bool IsRoot => geteuid() == 0;

    /// <summary>CLOCK_MONOTONIC in microseconds, read from libc: the clock of sd_notify's MONOTONIC_USEC.</summary>
    public static unsafe long MonotonicMicroseconds()
    {
        var time = stackalloc long[2]; // struct timespec on 64-bit Linux: seconds, nanoseconds.
        if (clock_gettime(1 /* CLOCK_MONOTONIC */, time) != 0)
        {
            throw new InvalidOperationException("clock_gettime(CLOCK_MONOTONIC) failed");
        }
        return time[0] * 1_000_000 + time[1] / 1_000;
    }

    /// <summary>
    /// SIGSTOP, then waits until every thread of the process has stopped. kill() only queues the signal:
    /// each thread stops when it next runs, so on a loaded machine the process goes on for milliseconds
    /// after kill() returns, long enough to accept a connection the test meant for its peer (CI saw it).
    /// </summary>
    /// <returns>How long the threads took to stop after kill() returned.</returns>
    public static async Task<TimeSpan> FreezeAsync(int pid, TimeSpan timeout)
    {
        if (!Kill(pid, SIGSTOP))
        {
            throw new InvalidOperationException($"SIGSTOP to {pid} failed: the process has gone");
        }
        return await Eventually.TrueAsync(() => EveryThreadStopped(pid), timeout, $"every thread of process {pid} stops after SIGSTOP");
    }

    // A thread's state in /proc is 'T' once it has stopped; a thread gone meanwhile no longer runs either.
    private static bool EveryThreadStopped(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task").All(task => State($"{task}/stat") is 'T' or null);

    /// <summary>True while the process exists and is not a zombie (a zombie has exited; only its parent has not reaped it).</summary>
    public static bool IsAlive(int pid) => State($"/proc/{pid}/stat") is not (null or 'Z' or 'X');

    // The state letter of a /proc stat file (after the command, which may hold spaces and parentheses); null once it is gone.
    private static char? State(string statPath)
    {
        string stat;
        try
        {
            stat = File.ReadAllText(statPath);
        }
        catch (IOException)
        {
            return null;
        }
        return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
    }

    [LibraryImport("libc")]
    private static unsafe partial int clock_gettime(int clock, long* time);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
