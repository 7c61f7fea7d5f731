using System.Runtime.InteropServices;

namespace Supervisor.Native;

/// <summary>
/// Signals a parent left ignored are taken back. nohup ignores HUP, and a script's background job (`&`)
/// ignores INT and QUIT; an ignored disposition is inherited across exec, and .NET respects it: it never
/// installs its handler on a signal that is ignored, so a HUP reload would silently do nothing. The signals
/// are the supervisor's control interface (Gunicorn's arbiter sets its handlers over SIG_IGN too), so each
/// one found ignored is reset to its default before the runtime's signal handling starts: first thing in
/// Main, before anything touches the console or starts a process. Until the handlers are installed a
/// moment later, such a signal has its default action, as it does for any process that is starting.
/// </summary>
internal static unsafe partial class InheritedSignals
{
    private static readonly (int Number, string Name)[] Controlling =
    [
        (1, "hup"), (2, "int"), (3, "quit"), (10, "usr1"), (12, "usr2"), (15, "term"), (21, "ttin"), (22, "ttou"), (28, "winch"),
    ];

    private static readonly IntPtr Ignore = 1; // SIG_IGN
    private static readonly IntPtr Default = 0; // SIG_DFL

    /// <summary>Names of the signals found ignored and taken back, for the start-up log.</summary>
    public static IReadOnlyList<string> TakenBack { get; private set; } = [];

    public static void TakeBack()
    {
        var takenBack = new List<string>();
        // struct sigaction starts with its handler on every Linux libc and architecture; 256 bytes hold
        // the whole struct (152 on glibc x86-64 and arm64).
        var action = stackalloc byte[256];
        foreach (var (number, name) in Controlling)
        {
            if (sigaction(number, null, action) == 0 && *(IntPtr*)action == Ignore && signal(number, Default) != -1)
            {
                takenBack.Add(name);
            }
        }
        TakenBack = takenBack;
    }

    [LibraryImport("libc")]
    private static partial int sigaction(int signal, byte* action, byte* previous);

    [LibraryImport("libc")]
    private static partial IntPtr signal(int signal, IntPtr handler);
}
