using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Supervisor.Arbitration;
using Supervisor.Cli;
using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Logging;
using Supervisor.Proxy;
using Supervisor.WorkerHost;
using Supervisor.Workers;

namespace Supervisor;

/// <summary>
/// One run of the supervisor, start to stop: check what can be checked before anything starts, bind the
/// public address before any worker exists (so a taken port leaves nothing behind), run the arbiter,
/// then stop in order and clean up.
/// </summary>
internal static partial class SupervisorRun
{
    // A quick stop still lets workers run their shutdown hooks, briefly.
    private static readonly TimeSpan QuickStopTimeout = TimeSpan.FromSeconds(1);

    public static async Task<int> RunAsync(LoadedConfiguration loaded, ConfigurationLoader loader)
    {
        var options = loaded.Options;
        CheckedStartup startup;
        ErrorLog errorLog;
        try
        {
            startup = StartupChecks.Run(options);
            errorLog = ErrorLog.Open(options);
        }
        catch (UsageException exception)
        {
            return Usage.Fail(exception.Message);
        }
        catch (StartupFailureException exception)
        {
            return Usage.Fail(exception);
        }

        using (startup)
        await using (errorLog)
        {
            var log = errorLog.Logger;
            try
            {
                return await RunLoggedAsync(loaded, loader, startup, errorLog);
            }
            catch (UsageException exception)
            {
                return Usage.Fail(exception.Message);
            }
            catch (StartupFailureException exception)
            {
                log.Fatal("{Reason}", exception.Message);
                return exception.ExitCode;
            }
            catch (Exception exception)
            {
                log.Fatal(exception, "Supervisor failed: {Reason}", exception.Message);
                return ExitCodes.RuntimeFailure;
            }
        }
    }

    private static async Task<int> RunLoggedAsync(LoadedConfiguration loaded, ConfigurationLoader loader, CheckedStartup startup, ErrorLog errorLog)
    {
        var options = loaded.Options;
        var log = errorLog.Logger;
        var events = Channel.CreateUnbounded<ArbiterEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var signals = new SignalHandlers(events.Writer);
        // Started by a binary upgrade (USR2): the sockets are the old supervisor's until this one serves.
        var upgrading = UpgradeHandoverOfThisProcess();
        var serviceManager = SystemdNotify.FromEnvironment(warning => log.Warning("{Warning}", warning), upgrading: upgrading is not null);
        using var runDirectory = RunDirectory.Open(options.SocketDirectory, upgrading: upgrading is not null);
        using var pidfile = Pidfile.Create(options.Pidfile, upgradingFrom: upgrading?.FromPid);
        log.Information("Starting supervisor {Version}", VersionInfo.Version);
        if (Native.InheritedSignals.TakenBack is { Count: > 0 } takenBack)
        {
            log.Information("Handling signals its parent left ignored (nohup, a background job): {Signals}", string.Join(", ", takenBack));
        }
        if (runDirectory.RemovedAbandonedDirectories is [var first, ..] abandoned)
        {
            log.Information("Removed socket directories left behind by killed supervisors: {Count} in {Parent}", abandoned.Count, Path.GetDirectoryName(first));
        }
        foreach (var warning in loaded.Warnings)
        {
            log.Warning("{Warning}", warning);
        }
        var destinations = new WorkerDestinations(options);
        var dispatcher = new WorkerDispatcher(
            destinations,
            onRequestLimitReached: worker => events.Writer.TryWrite(new WorkerRequestLimitReached(worker.Key, worker.RequestLimit)),
            onUnreachable: (key, reason) => events.Writer.TryWrite(new WorkerLost(key, reason)));
        dispatcher.Configure(options.WorkerConnections, options.MaxQueue);
        // A worker's control connection closes the moment its process dies: no request goes to it after.
        await using var control = ControlServer.Start(runDirectory.ControlSocketPath, events.Writer,
            onDisconnected: key => dispatcher.MarkUnreachable(key, "closed its control connection"));
        await using var commands = CommandServer.Start(runDirectory.CommandSocketPath, events.Writer);
        var keyRing = SharedKeyRing.Prepare(options.DataProtectionDirectory, options.App.Name, runDirectory, log);
        SharedKeyRing.EnsureCurrentKey(keyRing, log);
        await using var accessLog = AccessLog.Open(options, errorLog);
        var logs = new Logs(errorLog, accessLog);

        var current = new CurrentOptions(options);
        var handoff = new ConnectionHandoff();
        await using var front = FrontDoor.Build(current, startup.Certificate, runDirectory, destinations, dispatcher, accessLog, handoff, log);
        var health = new PoolHealth(TimeProvider.System);
        SupervisorMetrics.ObservePool(health, () => dispatcher.InFlight, () => dispatcher.Queued);
        await using var admin = options.AdminBind is { } adminBind ? AdminEndpoints.Create(adminBind, health, log) : null;
        // --balancer kernel and handoff: bound here, before any worker (or handed over by the supervisor a
        // binary upgrade replaces: its --bind is then those descriptors); in kernel mode inherited by each worker.
        using var shared = options.Balancer.WorkersServeClients()
            ? Kernel.SharedListenSockets.Bind(options.Binds, options.Backlog, inherited: options.Balancer == Balancer.Kernel, https: startup.Certificate is not null)
            : null;
        using var dealer = shared is not null && options.Balancer == Balancer.Handoff ? Kernel.ConnectionDealer.Start(shared, runDirectory.HandoffSocketPath, log) : null;
        // Kernel mode: where the workers say how many connections each holds, to share bursts of new ones.
        using var acceptShares = options.Balancer == Balancer.Kernel ? Kernel.AcceptShares.Create() : null;
        // The workers write the access log's lines there; disposed after they have stopped, with their last lines.
        await using var workerAccessLines = options.Balancer.WorkersServeClients() ? WorkerAccessLines.Start(runDirectory.AccessLogSocketPath, accessLog, log) : null;
        var listeners = new Listeners(front, shared, admin, options.Binds, startup.Certificate is not null, log);
        if (upgrading is null)
        {
            await listeners.StartAsync();
        }
        await using var idleMemoryTrim = IdleMemoryTrim.Start(TimeProvider.System);
        log.Information("Using worker: {App} ({Mode}, {Protocol})", options.App.Path, options.App.StartupHooksSupported ? "worker-host" : "socket probe",
            shared is null ? options.WorkerProtocol.ToString()
                : options.Balancer == Balancer.Kernel ? "kernel balancer: the workers accept the clients" : "handoff balancer: the workers serve the connections the supervisor accepts");

        var hooks = new ArbiterHooks(
            ReloadConfiguration: loader.Reload,
            ApplyConfiguration: next =>
            {
                current.Value = next.Options;
                logs.Apply(next.Options);
                destinations.SetRequestTimeout(next.Options.RequestTimeout);
                dispatcher.Configure(next.Options.WorkerConnections, next.Options.MaxQueue);
            },
            ReopenLogs: logs.Reopen,
            PrepareUpgrade: () => listeners.Handover(runDirectory.CommandSocketPath),
            SendToWorker: control.Send,
            RotationChanged: inRotation => dealer?.Publish(inRotation),
            FirstGenerationReady: () =>
            {
                if (upgrading is not null)
                {
                    _ = TakeOverAsync(upgrading, listeners, pidfile, events.Writer, log);
                }
            });
        var upgrade = new BinaryUpgrade(events.Writer, TimeProvider.System);
        var launcher = new WorkerLauncher(startup.WorkerRuntime, runDirectory, keyRing, shared?.Listeners, dealer is null ? null : runDirectory.HandoffSocketPath, acceptShares, TimeProvider.System);
        var arbiter = new Arbiter(loaded, hooks, serviceManager, upgrade, health, launcher, dispatcher, runDirectory, events, log, TimeProvider.System);
        var stop = await arbiter.RunAsync();
        // New clients are refused from now on, as the proxy's front refuses them: the supervisor's copies of
        // the shared sockets close here, and in kernel mode each worker closes its own as it stops.
        dealer?.Dispose();
        shared?.Dispose();
        commands.Stop();
        health.Stopping();
        if (stop.HandedOver)
        {
            if (admin is not null)
            {
                await admin.StopAsync(); // From now on the probes reach the new supervisor alone.
            }
            if (shared is null)
            {
                await HandOffConnectionsAsync(handoff, current.Value.KeepAlive, signals.QuickStopRequested);
            }
            else
            {
                // The workers serve the clients: each moves its own, as the front does above in proxy mode.
                await WorkerShutdown.DrainAsync(arbiter.Processes, worker => control.Send(worker.Key, WorkerProtocol.Drain),
                    current.Value.KeepAlive + TimeSpan.FromSeconds(1), signals.QuickStopRequested);
            }
        }
        serviceManager.Stopping(stop.Mode == StopMode.Graceful ? "stopping: requests in flight are finishing" : "stopping");

        if (stop.ExitCode == ExitCodes.Success)
        {
            log.Information("{Reason}", stop.Description);
        }
        else
        {
            log.Error("{Reason}", stop.Description);
        }
        var graceful = stop.Mode == StopMode.Graceful;
        var timeout = graceful ? current.Value.GracefulTimeout : QuickStopTimeout;
        if (!graceful)
        {
            // Requests still waiting for a worker are answered 503 at once; the front's stop gives those
            // answers up to the quick-stop time to leave (INT and QUIT cut it short, as documented).
            dispatcher.Close();
        }
        // The arbiter no longer reads signals: a graceful stop logs the one that cuts it short itself.
        using var cutShort = graceful
            ? signals.QuickStopRequested.Register(() => log.Information("Handling signal: {Signal}: cutting the graceful stop short", signals.QuickStopSignal))
            : default;
        await StopFrontAsync(front, timeout, signals.QuickStopRequested);
        await WorkerShutdown.StopAsync(arbiter.Processes, timeout, log, QuickStopTimeout, signals.QuickStopRequested);
        if (!stop.HandedOver)
        {
            UnixListenSockets.RemoveFiles(); // Handed over, they are the new supervisor's addresses.
        }
        log.Information("Shutting down: Master");
        if (stop.ExitCode == ExitCodes.WorkerBootFailure)
        {
            log.Error("Reason: Worker failed to boot.");
        }
        return stop.ExitCode;
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
