using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Serilog;
using Supervisor.Arbitration;
using Supervisor.Cli;
using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Proxy;
using Supervisor.Workers;

namespace Supervisor;

/// <summary>
/// One run of the supervisor, start to stop: bind the public address before any worker exists (so a
/// taken port leaves nothing behind), run the arbiter, then stop in order and clean up.
/// </summary>
internal static class SupervisorRun
{
    // A quick stop still lets workers run their shutdown hooks, briefly.
    private static readonly TimeSpan QuickStopTimeout = TimeSpan.FromSeconds(1);

    // Without --request-timeout a request may take as long as it needs, like behind Gunicorn; YARP's
    // own idle limit (100 s by default) would otherwise cut long polls and quiet streams.
    private static readonly TimeSpan NoRequestTimeout = TimeSpan.FromDays(1);

    public static async Task<int> RunAsync(SupervisorOptions options, ILogger log)
    {
        var workerRuntime = WorkerRuntime.Locate(options.App, Environment.GetEnvironmentVariable);
        var events = Channel.CreateUnbounded<ArbiterEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var signals = new SignalHandlers(events.Writer);
        using var runDirectory = RunDirectory.Open(options.SocketDirectory);
        log.Information("Starting supervisor {Version}", typeof(SupervisorRun).Assembly.GetName().Version?.ToString(3));
        await using var control = ControlServer.Start(runDirectory.ControlSocketPath, events.Writer);
        var keyRing = SharedKeyRing.Prepare(options.DataProtectionDirectory, options.App.Name, runDirectory, log);
        SharedKeyRing.EnsureCurrentKey(keyRing, log);
        var destinations = new WorkerDestinations(options.RequestTimeout > TimeSpan.Zero ? options.RequestTimeout : NoRequestTimeout, options.StickySessions, options.WorkerProtocol);
        var requestLimits = new RequestLimits(events.Writer);
        await using var front = FrontDoor.Build(options, runDirectory, destinations, requestLimits, log);
        await StartFrontAsync(front, options);
        foreach (var address in FrontDoor.ListeningAddresses(front))
        {
            log.Information("Listening at: {Address} ({Pid})", address, Environment.ProcessId);
        }
        log.Information("Using worker: {App} ({Mode}, {Protocol})", options.App.Path, options.App.StartupHooksSupported ? "worker-host" : "socket probe", options.WorkerProtocol);

        var arbiter = new Arbiter(options, new WorkerLauncher(options, workerRuntime, runDirectory, keyRing, TimeProvider.System), destinations, requestLimits, runDirectory, events, log, TimeProvider.System);
        var stop = await arbiter.RunAsync();

        if (stop.ExitCode == ExitCodes.Success)
        {
            log.Information("{Reason}", stop.Description);
        }
        else
        {
            log.Error("{Reason}", stop.Description);
        }
        var graceful = stop.Mode == StopMode.Graceful;
        var timeout = graceful ? options.GracefulTimeout : QuickStopTimeout;
        await StopFrontAsync(front, graceful ? timeout : TimeSpan.Zero, signals.QuickStopRequested);
        await WorkerShutdown.StopAsync(arbiter.Processes, timeout, log, signals.QuickStopRequested);
        log.Information("Shutting down: Master");
        if (stop.ExitCode == ExitCodes.WorkerBootFailure)
        {
            log.Error("Reason: Worker failed to boot.");
        }
        return stop.ExitCode;
    }

    private static async Task StartFrontAsync(WebApplication front, SupervisorOptions options)
    {
        try
        {
            await front.StartAsync();
        }
        catch (Exception exception) when (exception is AddressInUseException or IOException or System.Net.Sockets.SocketException)
        {
            var binds = string.Join(", ", options.Binds);
            // Kestrel wraps the AddressInUseException in an IOException that repeats the address.
            var reason = exception is AddressInUseException || exception.InnerException is AddressInUseException
                ? "the address is already in use"
                : exception.Message.TrimEnd('.');
            throw new StartupFailureException(
                $"cannot listen on {binds}: {reason}; stop whatever holds it or choose another --bind", ExitCodes.RuntimeFailure, exception);
        }
    }

    // Closes the listeners at once; in-flight requests finish (their workers still run) until the timeout.
    private static async Task StopFrontAsync(WebApplication front, TimeSpan timeout, CancellationToken hurry)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(hurry);
        deadline.CancelAfter(timeout);
        try
        {
            await front.StopAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
