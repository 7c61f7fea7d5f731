using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace Supervisor.Arbitration;

/// <summary>
/// Turns POSIX signals into arbiter events. Handlers only queue; all work happens in the arbiter's loop.
/// A SIGINT or SIGQUIT during a graceful stop also cuts that stop short.
/// </summary>
internal sealed class SignalHandlers : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly CancellationTokenSource _hurry = new();

    public SignalHandlers(ChannelWriter<ArbiterEvent> events)
    {
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGQUIT })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // The supervisor decides how to stop; the runtime must not exit by itself.
                events.TryWrite(new SignalReceived(context.Signal));
                if (context.Signal is PosixSignal.SIGINT or PosixSignal.SIGQUIT)
                {
                    _hurry.Cancel();
                }
            }));
        }
    }

    /// <summary>Cancelled when a quick stop is asked for.</summary>
    public CancellationToken QuickStopRequested => _hurry.Token;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
        _hurry.Dispose();
    }
}
