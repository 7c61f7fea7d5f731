using System.Diagnostics;
using Microsoft.Extensions.Hosting;

namespace Supervisor.WorkerHost;

/// <summary>
/// Everything the worker-host does inside the app's process: says hello, reports readiness when the
/// app's server has started, beats a heartbeat, and stops the app if the supervisor disappears.
/// </summary>
internal sealed class WorkerAgent : IDisposable
{
    // How long a worker whose supervisor vanished gets to stop gracefully before it exits hard.
    // Its clients were the supervisor's connections, which are already gone, so this is short.
    private static readonly TimeSpan OrphanGracePeriod = TimeSpan.FromSeconds(1);

    private readonly WorkerSettings _settings;
    private readonly ControlConnection _control;
    private readonly Timer _heartbeat;
    private IHostApplicationLifetime? _lifetime;

    private WorkerAgent(WorkerSettings settings, ControlConnection control)
    {
        _settings = settings;
        _control = control;
        // In kernel mode each beat carries the requests served so far: only the worker sees them.
        _heartbeat = new Timer(_ => _control.Send(Served is { } served ? $"{WorkerProtocol.Heartbeat} {served.Total}" : WorkerProtocol.Heartbeat), null, Timeout.Infinite, Timeout.Infinite);
        if (settings.Kernel is { } kernel)
        {
            Gate = new ConnectionGate();
            Fair = kernel.HandoffSocket is null ? FairAccept.FromEnvironment() : null; // Handoff mode: the supervisor deals evenly.
            Served = new ServedRequests(kernel.RequestLimit, limit => _control.Send($"{WorkerProtocol.Limit} {limit}"));
        }
        if (settings.Serving?.AccessLog is { } accessLog)
        {
            AccessLog = AccessLogSender.Connect(accessLog.SocketPath);
        }
    }

    /// <summary>Kernel mode: when this worker takes client connections.</summary>
    internal ConnectionGate? Gate { get; }

    /// <summary>Kernel mode: how this worker shares new connections with its peers.</summary>
    internal FairAccept? Fair { get; }

    /// <summary>Kernel mode: the requests it served.</summary>
    internal ServedRequests? Served { get; }

    /// <summary>Kernel and handoff modes with --access-logfile: where this worker's access-log lines go.</summary>
    internal AccessLogSender? AccessLog { get; }

    public static void StartFromEnvironment()
    {
        var settings = WorkerSettings.FromEnvironment();
        if (settings is null)
        {
            return;
        }
        var agent = new WorkerAgent(settings, ControlConnection.Connect(settings.ControlSocketPath));
        agent.Start();
    }

    private void Start()
    {
        _control.Send($"{WorkerProtocol.Hello} {_settings.WorkerKey} {Environment.ProcessId}");
        _heartbeat.Change(_settings.HeartbeatInterval, _settings.HeartbeatInterval);
        _control.Watch(OnSupervisorMessage, OnSupervisorLost);
        DiagnosticListener.AllListeners.Subscribe(new HostingEventObserver(this));
    }

    /// <summary>The host is about to be built: the last moment to add services and configuration.</summary>
    internal void OnHostBuilding(object? builder) => HostCustomization.Apply(builder, this, _settings);

    /// <summary>The host exists: readiness follows its lifetime.</summary>
    internal void OnHostBuilt(object? host)
    {
        if (host is not IHost builtHost || builtHost.Services.GetService(typeof(IHostApplicationLifetime)) is not IHostApplicationLifetime lifetime)
        {
            return;
        }
        _lifetime = lifetime;
        // ApplicationStarted fires after the server's sockets are bound: the worker can take requests.
        lifetime.ApplicationStarted.Register(() => _control.Send(WorkerProtocol.Ready));
        lifetime.ApplicationStopping.Register(() =>
        {
            Fair?.LeaveRotation(); // Stopped without a drain (SIGTERM): its accepts end with the host's.
            _control.Send(WorkerProtocol.Stopping);
        });
        if (Served is { } served)
        {
            lifetime.ApplicationStopped.Register(() => _control.Send($"{WorkerProtocol.Served} {served.Total}"));
        }
        if (AccessLog is { } accessLog)
        {
            // The server has finished every request by now: their lines are all queued.
            lifetime.ApplicationStopped.Register(() => accessLog.Flush(TimeSpan.FromSeconds(2)));
        }
    }

    private void OnSupervisorMessage(string message)
    {
        switch (message)
        {
            case WorkerProtocol.Accept:
                // In rotation before the gate opens: a worker that accepts is always one its peers count.
                if (Gate?.IsDraining == false)
                {
                    Fair?.EnterRotation();
                }
                Gate?.Open();
                break;
            case WorkerProtocol.Drain when Gate is { } gate:
                Fair?.LeaveRotation();
                gate.BeginDrain();
                _ = StopWhenDrainedAsync(gate);
                break;
        }
    }

    // The HTTP/1.1 clients have until their next response, or the keep-alive time (after which Kestrel
    // closes their idle connections itself), to leave; then the host stops as on SIGTERM, finishing the
    // requests still in flight (WebSockets, long polls) within its shutdown timeout, --graceful-timeout.
    private async Task StopWhenDrainedAsync(ConnectionGate gate)
    {
        var keepAlive = _settings.Kernel!.KeepAlive;
        await Task.WhenAny(gate.Drained, Task.Delay(keepAlive + TimeSpan.FromSeconds(1)));
        _lifetime?.StopApplication();
    }

    private void OnSupervisorLost()
    {
        HookLog.Note("the supervisor went away; stopping this worker");
        Dispose();
        if (_lifetime is null)
        {
            Environment.Exit(1);
            return;
        }
        _lifetime.StopApplication();
        var watchdog = new Thread(() =>
        {
            Thread.Sleep(OrphanGracePeriod);
            Environment.Exit(1);
        })
        {
            IsBackground = true,
            Name = "orphan-watchdog",
        };
        watchdog.Start();
    }

    /// <summary>Stops the heartbeat; the agent otherwise lives as long as the process.</summary>
    public void Dispose() => _heartbeat.Dispose();
}
