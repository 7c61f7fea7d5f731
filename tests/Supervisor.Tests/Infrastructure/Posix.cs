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
    public const int SIGTTIN = 21;
    public const int SIGTTOU = 22;
    public const int SIGTERM = 15;
    public const int SIGUSR1 = 10;

    public static bool Kill(int pid, int signal) => kill(pid, signal) == 0;

    public static bool IsRoot => geteuid() == 0;

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
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
