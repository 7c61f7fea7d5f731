using System.Threading.Channels;
using Supervisor.Arbitration;
using Supervisor.Cli;
using Supervisor.Configuration;

namespace Supervisor;

/// <summary>The new supervisor's side of a binary upgrade: serve once the workers are ready, then tell the old one.</summary>
internal static partial class SupervisorRun
{
    // Long enough for a loaded machine's old supervisor to take one turn of its loop.
    private static readonly TimeSpan TakeoverAnswerWithin = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The old side, once handed over: for the keep-alive timeout (and Kestrel's one-second beat), every
    /// HTTP/1.x answer closes its connection, so clients move to the new supervisor after an answer
    /// rather than find their idle connection closed under a request. Then the graceful stop.
    /// </summary>
    private static async Task HandOffConnectionsAsync(Proxy.ConnectionHandoff handoff, TimeSpan keepAlive, CancellationToken hurry)
    {
        handoff.Begin();
        try
        {
            await Task.Delay(keepAlive + TimeSpan.FromSeconds(1), hurry);
        }
        catch (OperationCanceledException)
        {
            // INT or QUIT: the stop goes on at once.
        }
    }

    private static UpgradeHandover? UpgradeHandoverOfThisProcess()
    {
        if (Environment.GetEnvironmentVariable(UpgradeHandover.Variable) is not { } text)
        {
            return null;
        }
        var handover = UpgradeHandover.Parse(text);
        // Inherited open across exec; this supervisor starts its workers before it serves, and none may inherit them.
        foreach (var bind in handover.Binds.Append(handover.AdminBind).OfType<FdBind>())
        {
            if (!Native.Libc.SetCloseOnExec(bind.Descriptor))
            {
                throw new StartupFailureException($"${UpgradeHandover.Variable}: descriptor {bind.Descriptor} is not open; it is set by a supervisor upgrading itself (USR2), never by hand", ExitCodes.RuntimeFailure);
            }
        }
        return handover;
    }

    /// <summary>
    /// Starts serving the handed-over sockets (until now only the old supervisor accepted on them), then
    /// asks the old one to hand over: it names this one systemd's main pid and drains. If these sockets
    /// cannot be served, this supervisor stops and the old one serves on.
    /// </summary>
    private static async Task TakeOverAsync(UpgradeHandover handover, Listeners listeners, Pidfile? pidfile, ChannelWriter<ArbiterEvent> events, Serilog.ILogger log)
    {
        try
        {
            await listeners.StartAsync();
        }
        catch (Exception exception) when (exception is StartupFailureException or UsageException or IOException or InvalidOperationException)
        {
            events.TryWrite(new StopRequested(new StopReason(StopMode.Quick, ExitCodes.RuntimeFailure,
                $"Cannot serve the sockets supervisor {handover.FromPid} handed over ({exception.Message}); it serves on")));
            return;
        }
        // Serving them now, this supervisor removes their unix: files when it stops; one that fails
        // before this point must leave them to the old supervisor, which still serves there.
        foreach (var bind in handover.Binds.Append(handover.AdminBind).OfType<FdBind>())
        {
            Proxy.UnixListenSockets.Adopt(bind.Descriptor);
        }
        pidfile?.TakeOver();
        var refusal = await SupervisorClient.RequestTakeoverAsync(handover.CommandSocket, TakeoverAnswerWithin);
        if (refusal is not null)
        {
            log.Warning("Supervisor {Pid} did not hand over ({Reason}); this one serves beside it until it stops", handover.FromPid, refusal);
        }
        events.TryWrite(new ServingAfterUpgrade(handover.FromPid, HandedOver: refusal is null));
    }
}
