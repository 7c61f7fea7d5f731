using System.Diagnostics;
using System.Threading.Channels;
using Supervisor.Arbitration;
using Supervisor.Configuration;
using Supervisor.Native;

namespace Supervisor.Control;

/// <summary>
/// Gunicorn's binary upgrade (USR2), in one step: the supervisor starts the binary on disk, with its own
/// command line and environment, as a new supervisor, and hands it the listening sockets. The new one
/// boots its workers without accepting a connection; once they are ready it serves, and tells this one
/// over the command socket, which then stops taking connections and drains (a graceful stop). A new
/// binary that exits first, or takes longer than <see cref="TakeOverWithin"/>, changes nothing: this one
/// never stopped serving.
/// </summary>
/// <remarks>
/// States: Idle --Start--> Starting(next) --TookOver--> HandedOver (final: this supervisor stops)
///                            \--Exited / past the deadline (killed)--> Idle
/// At most one new supervisor runs at a time; only that process may take over.
/// </remarks>
internal sealed class BinaryUpgrade(ChannelWriter<ArbiterEvent> events, TimeProvider time)
{
    private Process? _next;
    private DateTimeOffset _deadline;

    /// <summary>The new supervisor's pid while it boots; null when no upgrade runs.</summary>
    public int? NextPid => _next?.Id;

    public bool HandedOver { get; private set; }

    /// <summary>How long the new supervisor may take to boot its workers and take over, beyond --boot-timeout.</summary>
    public static TimeSpan TakeOverWithin(TimeSpan bootTimeout) => bootTimeout + TimeSpan.FromSeconds(60);

    /// <summary>Starts the new supervisor with <paramref name="handover"/>; returns what it started (the file, and the assembly under dotnet).</summary>
    public string Start(UpgradeHandover handover, TimeSpan takeOverWithin)
    {
        if (_next is not null || HandedOver)
        {
            throw new InvalidOperationException("an upgrade is already under way");
        }
        var (file, arguments) = ThisCommand();
        var start = new ProcessStartInfo(file, arguments) { UseShellExecute = false };
        foreach (var variable in SystemdNotify.MeantForThisProcess)
        {
            start.Environment.Remove(variable);
        }
        start.Environment[UpgradeHandover.Variable] = handover.ToString();
        // Inherited across exec only for this start: the arbiter's loop, which also starts the workers,
        // is the only thread that starts processes, so no worker is started while they are open to it.
        // Those every process inherits already (--balancer kernel's, which the workers accept on) stay so.
        var descriptors = handover.Binds.Append(handover.AdminBind).OfType<FdBind>().Select(bind => bind.Descriptor).Where(Libc.ClosesOnExec).ToList();
        foreach (var descriptor in descriptors)
        {
            if (!Libc.SetCloseOnExec(descriptor, closeOnExec: false))
            {
                throw new IOException($"listening socket {descriptor} is not open");
            }
        }
        try
        {
            var process = new Process { StartInfo = start, EnableRaisingEvents = true };
            process.Exited += (_, _) => events.TryWrite(new UpgradeExited(process, ExitCodeOf(process)));
            process.Start();
            _next = process;
            _deadline = time.GetUtcNow() + takeOverWithin;
            return IsDotnetHost(file) ? $"{file} {arguments[0]}" : file;
        }
        finally
        {
            foreach (var descriptor in descriptors)
            {
                Libc.SetCloseOnExec(descriptor, closeOnExec: true);
            }
        }
    }

    /// <summary>The new supervisor says it serves: true if it is the one this upgrade started.</summary>
    public bool TookOver(int pid)
    {
        if (_next?.Id != pid)
        {
            return false;
        }
        HandedOver = true;
        _next = null;
        return true;
    }

    /// <summary>It exited: true if it was the one booting (the upgrade failed), false if it had taken over or is unknown.</summary>
    public bool Exited(Process process)
    {
        if (_next != process)
        {
            return false;
        }
        _next = null;
        process.Dispose();
        return true;
    }

    /// <summary>Kills a new supervisor that has not taken over by the deadline; returns its pid, or null.</summary>
    public int? KillIfLate()
    {
        if (_next is not { } next || time.GetUtcNow() < _deadline)
        {
            return null;
        }
        var pid = next.Id;
        Libc.Kill(pid, Libc.SIGKILL); // Its exit comes as UpgradeExited, which ends the upgrade.
        _deadline = DateTimeOffset.MaxValue;
        return pid;
    }

    // The command this supervisor was started with, so that the build now on disk there runs:
    //   dotnet supervisor.dll   the host is dotnet and argv[0] the assembly: dotnet with the same arguments
    //   supervisor (apphost)    dotnet build's output: argv[0] names the assembly beside the apphost,
    //                           which bears its name without ".dll": that apphost (starting the assembly
    //                           itself fails with "Permission denied")
    //   supervisor (native)     argv[0], the path as it was started (/proc/self/exe would name the running
    //                           file, "(deleted)" once it was replaced)
    private static (string File, string[] Arguments) ThisCommand()
    {
        var arguments = Environment.GetCommandLineArgs();
        var host = Environment.ProcessPath ?? arguments[0];
        if (IsDotnetHost(host))
        {
            return (host, arguments);
        }
        if (arguments[0].EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            var apphost = Path.ChangeExtension(arguments[0], null);
            return (File.Exists(apphost) ? apphost : host, arguments[1..]);
        }
        return (arguments[0], arguments[1..]);
    }

    private static bool IsDotnetHost(string file) => Path.GetFileNameWithoutExtension(file) == "dotnet";

    private static int ExitCodeOf(Process process)
    {
        try
        {
            return process.ExitCode;
        }
        catch (InvalidOperationException)
        {
            return -1;
        }
    }
}
