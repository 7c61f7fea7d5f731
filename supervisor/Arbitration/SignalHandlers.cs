using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace Supervisor.Arbitration;

/// <summary>
/// Turns POSIX signals into arbiter events. Handlers only queue; all work happens in the arbiter's loop.
/// A SIGINT or SIGQUIT during a graceful stop also cuts that stop short.
/// </summary>
internal sealed class SignalHandlers : IDisposable
{
    /// <summary>Reopen the log files (logrotate's postrotate). .NET has no name for it; Linux numbers it 10.</summary>
    public const PosixSignal SIGUSR1 = (PosixSignal)10;

    /// <summary>Gunicorn's binary upgrade, not offered: logged and ignored. Linux numbers it 12.</summary>
    public const PosixSignal SIGUSR2 = (PosixSignal)12;

    // Every signal Gunicorn's arbiter answers is handled here, the ones the supervisor does not use too:
    // the default action of HUP, USR1 and USR2 would kill the supervisor, and with it every worker, for
    // an operator who sent what Gunicorn taught them. WINCH is ignored by default, but then silently.
    private static readonly PosixSignal[] Handled =
    [
        PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGQUIT,
        PosixSignal.SIGHUP, PosixSignal.SIGTTIN, PosixSignal.SIGTTOU, SIGUSR1,
        SIGUSR2, PosixSignal.SIGWINCH,
    ];

    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly CancellationTokenSource _hurry = new();

    public SignalHandlers(ChannelWriter<ArbiterEvent> events)
    {
        foreach (var signal in Handled)
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // The supervisor decides what a signal does; the runtime must not act on it.
                events.TryWrite(new SignalReceived(context.Signal));
                if (context.Signal is PosixSignal.SIGINT or PosixSignal.SIGQUIT)
                {
                    QuickStopSignal ??= Name(context.Signal);
                    _hurry.Cancel();
                }
            }));
        }
    }

    /// <summary>Gunicorn's name for a signal in its log: "term", "hup", "usr1".</summary>
    public static string Name(PosixSignal signal) => signal switch
    {
        SIGUSR1 => "usr1",
        SIGUSR2 => "usr2",
        // .NET's names are SIGTERM etc.; a number it has no name for prints as the number.
        _ when signal.ToString() is ['S', 'I', 'G', .. var rest] => rest.ToLowerInvariant(),
        _ => ((int)signal).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Cancelled when a quick stop is asked for.</summary>
    public CancellationToken QuickStopRequested => _hurry.Token;

    /// <summary>The first signal that asked for a quick stop ("int", "quit"); null until one did.</summary>
    public string? QuickStopSignal { get; private set; }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
        _hurry.Dispose();
    }
}
