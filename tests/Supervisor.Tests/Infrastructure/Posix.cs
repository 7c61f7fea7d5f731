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

    /// <summary>True while the process exists and is not a zombie (a zombie has exited; only its parent has not reaped it).</summary>
    public static bool IsAlive(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return false;
        }
        var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
        return state is not ('Z' or 'X');
    }

    [LibraryImport("libc")]
    private static unsafe partial int clock_gettime(int clock, long* time);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
