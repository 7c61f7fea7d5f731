using System.Diagnostics;
using System.Globalization;
using Serilog.Events;
using Supervisor.Configuration;
using Supervisor.WorkerHost;

namespace Supervisor.Workers;

/// <summary>Turns the options into the command line and environment of one worker process.</summary>
/// <param name="sharedListeners">--balancer kernel and handoff: the public listeners every worker serves; null in proxy mode.</param>
/// <param name="handoffSocket">--balancer handoff: where the workers receive the connections the supervisor accepts on <paramref name="sharedListeners"/>; null in kernel mode, where they inherit those.</param>
/// <param name="acceptShares">--balancer kernel: where the workers say how many connections each holds; each worker gets an entry.</param>
internal sealed class WorkerLauncher(WorkerRuntime runtime, RunDirectory runDirectory, string keyRingDirectory, IReadOnlyList<PublicListener>? sharedListeners, string? handoffSocket, Kernel.AcceptShares? acceptShares, TimeProvider time)
{
    // Container images and shells set these; any of them would make a worker bind a public port
    // or fight over the supervisor's address.
    private static readonly string[] ListenVariables =
    [
        "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_HTTPS_PORTS",
        "DOTNET_URLS", "DOTNET_HTTP_PORTS", "DOTNET_HTTPS_PORTS",
    ];

    /// <summary>Starts one worker of the app <paramref name="options"/> name, as <paramref name="identity"/>.</summary>
    /// <param name="requestLimit">Its --max-requests with jitter (0: none): counted by the worker itself in kernel mode.</param>
    public WorkerProcess Launch(SupervisorOptions options, WorkerIdentity identity, long requestLimit, Action<WorkerProcess, string, LogEventLevel> onOutput)
    {
        var socketPath = runDirectory.WorkerSocketPath(identity.Key);
        // A worker killed with SIGKILL leaves its socket file; the names are unique per spawn, but a
        // leftover from an earlier run must not make Kestrel fail with "address in use".
        if (File.Exists(socketPath))
        {
            File.Delete(socketPath);
        }
        var shareEntry = acceptShares?.Take();
        var startInfo = CreateStartInfo(options, identity, socketPath, requestLimit, shareEntry);
        WorkerProcess worker;
        try
        {
            // Open across exec only for this start: the arbiter's loop is the only thread that starts processes.
            SetShareTableInherited(shareEntry is not null);
            worker = WorkerProcess.Start(identity, startInfo, time, onOutput);
        }
        catch
        {
            ReleaseShareEntry(shareEntry);
            throw;
        }
        finally
        {
            SetShareTableInherited(false);
        }
        _ = worker.Exited.ContinueWith(_ => ReleaseShareEntry(shareEntry), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return worker;
    }

    private void SetShareTableInherited(bool inherited)
    {
        if (acceptShares is not null)
        {
            Native.Libc.SetCloseOnExec(acceptShares.Descriptor, !inherited);
        }
    }

    private void ReleaseShareEntry(int? entry)
    {
        if (entry is { } index)
        {
            acceptShares!.Release(index);
        }
    }

    private ProcessStartInfo CreateStartInfo(SupervisorOptions options, WorkerIdentity identity, string socketPath, long requestLimit, int? shareEntry)
    {
        var startInfo = new ProcessStartInfo
        {
            FileName = options.App.IsDll ? runtime.DotnetHost ?? "dotnet" : options.App.Path,
            WorkingDirectory = options.WorkingDirectory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (options.App.IsDll)
        {
            startInfo.ArgumentList.Add(options.App.Path);
        }

        var environment = startInfo.Environment;
        foreach (var name in ListenVariables.Concat(Control.SystemdNotify.Variables))
        {
            environment.Remove(name);
        }
        environment.Remove(Configuration.UpgradeHandover.Variable); // Descriptors the supervisor has already taken.
        foreach (var name in FrontRuntimeSettings.FrontOnlyVariables)
        {
            environment.Remove(name); // The front's own tuning; the app keeps its runtime's defaults.
        }
        // The app's own shutdown timeout (HostOptions.ShutdownTimeout, 30 s by default) follows ours.
        environment["DOTNET_SHUTDOWNTIMEOUTSECONDS"] = ((int)options.GracefulTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        foreach (var (name, value) in options.WorkerEnvironment)
        {
            environment[name] = value;
        }

        if (sharedListeners is not null)
        {
            // Kernel mode: the worker serves the clients on the sockets it inherits, not the supervisor.
            // Handoff mode: on the connections the supervisor accepts on them and hands over.
            if (handoffSocket is null)
            {
                environment[WorkerProtocol.ListenHandlesVariable] = KernelListening.Format(sharedListeners);
                environment.Remove(WorkerProtocol.HandoffSocketVariable);
                SetOrRemove(environment, WorkerProtocol.AcceptShareVariable, shareEntry is { } entry ? $"{acceptShares!.Descriptor}:{entry}" : null);
            }
            else
            {
                environment[WorkerProtocol.HandoffSocketVariable] = handoffSocket;
                environment[WorkerProtocol.HandoffListenersVariable] = KernelListening.Format(sharedListeners);
                environment.Remove(WorkerProtocol.ListenHandlesVariable);
                environment.Remove(WorkerProtocol.AcceptShareVariable);
            }
            environment[WorkerProtocol.RequestLimitVariable] = requestLimit.ToString(CultureInfo.InvariantCulture);
            environment[WorkerProtocol.KeepAliveVariable] = ((long)options.KeepAlive.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
            // What the proxy front does for each request in proxy mode, the worker-host does in the worker.
            environment[WorkerProtocol.ForwardedAllowIpsVariable] = options.ForwardedAllowIps.ToString();
            SetOrRemove(environment, WorkerProtocol.CertFileVariable, options.ServesHttps ? Path.GetFullPath(options.CertFile!) : null);
            SetOrRemove(environment, WorkerProtocol.KeyFileVariable, options.ServesHttps ? Path.GetFullPath(options.KeyFile!) : null);
            SetOrRemove(environment, WorkerProtocol.AccessLogSocketVariable, options.AccessLogFile is null ? null : runDirectory.AccessLogSocketPath);
            SetOrRemove(environment, WorkerProtocol.AccessLogFormatVariable, options.AccessLogFile is null ? null : options.AccessLogFormat.Text);
        }
        else
        {
            // A supervisor run under a kernel-mode or handoff-mode one.
            environment.Remove(WorkerProtocol.ListenHandlesVariable);
            environment.Remove(WorkerProtocol.HandoffSocketVariable);
            environment.Remove(WorkerProtocol.AcceptShareVariable);
            environment.Remove(WorkerProtocol.AccessLogSocketVariable);
            environment.Remove(WorkerProtocol.CertFileVariable);
            if (options.WorkerProtocol == WorkerProtocolVersion.Http2)
            {
                // Cleartext HTTP/2 needs an HTTP/2-only endpoint: Kestrel then accepts prior-knowledge h2c.
                environment["Kestrel__EndpointDefaults__Protocols"] = "Http2";
            }
            var listenUrl = $"http://unix:{socketPath}";
            environment["ASPNETCORE_URLS"] = listenUrl;
            environment[WorkerProtocol.ListenUrlVariable] = listenUrl;
            environment[WorkerProtocol.HeaderAllowanceVariable] = Proxy.ForwardingRules.Allowance(options).ToString();
        }
        environment[WorkerProtocol.ControlSocketVariable] = runDirectory.ControlSocketPath;
        environment[WorkerProtocol.WorkerKeyVariable] = identity.Key;
        environment[WorkerProtocol.WorkerIdVariable] = identity.Slot.ToString(CultureInfo.InvariantCulture);
        environment[WorkerProtocol.WorkerGenerationVariable] = identity.Generation.ToString(CultureInfo.InvariantCulture);
        environment[WorkerProtocol.DataProtectionDirectoryVariable] = keyRingDirectory;
        environment[WorkerProtocol.ApplicationNameVariable] = options.App.Name;
        environment[WorkerProtocol.HeartbeatIntervalVariable] = ((int)HeartbeatInterval(options.Timeout).TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        environment["DOTNET_STARTUP_HOOKS"] = environment.TryGetValue("DOTNET_STARTUP_HOOKS", out var hooks) && !string.IsNullOrEmpty(hooks)
            ? $"{hooks}{Path.PathSeparator}{runtime.HookPath}"
            : runtime.HookPath;
        return startInfo;
    }

    private static void SetOrRemove(IDictionary<string, string?> environment, string name, string? value)
    {
        if (value is null)
        {
            environment.Remove(name);
        }
        else
        {
            environment[name] = value;
        }
    }

    /// <summary>A beat a second, and at least four beats within --timeout so one late beat is no false alarm.</summary>
    internal static TimeSpan HeartbeatInterval(TimeSpan timeout)
    {
        var interval = TimeSpan.FromSeconds(1);
        if (timeout > TimeSpan.Zero && timeout / 4 < interval)
        {
            interval = timeout / 4;
        }
        return interval < TimeSpan.FromMilliseconds(100) ? TimeSpan.FromMilliseconds(100) : interval;
    }
}
