using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting.Systemd;

namespace Supervisor.Control;

/// <summary>
/// Tells systemd what the pool is doing, by the notify protocol of sd_notify(3) (a unit with
/// <c>Type=notify</c>); the datagrams are sent by Microsoft.Extensions.Hosting.Systemd's
/// <see cref="SystemdNotifier"/>. Without <c>NOTIFY_SOCKET</c> every call does nothing.
/// </summary>
/// <remarks>
/// The states, as systemd reads them:
/// <code>
///   Starting --Ready--> Ready --Reloading--> Reloading --Ready--> Ready
///       \________________\_________________________\__Stopping--> Stopping (final)
///   AwaitingTakeover --TookOver--> Ready          (a supervisor started by a binary upgrade: silent until then)
///   Ready/Reloading --HandOver--> HandedOver      (final: MAINPID= names the new supervisor; silent after)
/// </code>
/// READY=1 is sent once per arrival in Ready: when the first generation serves, and when a reload has
/// ended (completed, abandoned or refused). RELOADING=1 carries MONOTONIC_USEC, as systemd asks of a
/// reload. STATUS= follows the pool and is sent only when its text changed. WATCHDOG=1 is sent from the
/// arbiter's loop, so a loop that stops turning (not just a process that lives) trips WatchdogSec=.
/// </remarks>
internal sealed class SystemdNotify
{
    /// <summary>
    /// The service manager's variables, which are the supervisor's alone: a worker that saw
    /// NOTIFY_SOCKET (an app that calls UseSystemd) would tell systemd it is ready, or stopping, on the
    /// supervisor's behalf, and LISTEN_FDS would hand it sockets that are not its own.
    /// </summary>
    public static readonly IReadOnlyList<string> Variables =
        ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

    /// <summary>
    /// Of those, what a supervisor started by a binary upgrade must not see either: the sockets are
    /// handed to it by descriptor, and it is the watchdog's pid only once systemd knows it as the main one.
    /// </summary>
    public static readonly IReadOnlyList<string> MeantForThisProcess = ["WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

    private enum State { Starting, Ready, Reloading, Stopping, AwaitingTakeover, HandedOver }

    private readonly ISystemdNotifier _notifier;
    private readonly TimeSpan? _watchdogInterval;
    private readonly Action<string> _warn;
    private State _state;
    private string? _status;
    private long _lastWatchdog;
    private bool _warned;

    /// <param name="upgrading">Started by a binary upgrade: silent until <see cref="TookOver"/>, since systemd hears only its main pid.</param>
    public SystemdNotify(ISystemdNotifier notifier, TimeSpan? watchdogInterval, Action<string> warn, bool upgrading = false)
    {
        _notifier = notifier;
        _watchdogInterval = watchdogInterval;
        _warn = warn;
        _state = upgrading ? State.AwaitingTakeover : State.Starting;
    }

    /// <summary>From the environment systemd gave the supervisor (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID).</summary>
    public static SystemdNotify FromEnvironment(Action<string> warn, bool upgrading) =>
        new(new SystemdNotifier(), WatchdogInterval(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), Environment.GetEnvironmentVariable("WATCHDOG_PID"), Environment.ProcessId), warn, upgrading);

    /// <summary>The watchdog's interval, when it is meant for this process (sd_watchdog_enabled(3)).</summary>
    public static TimeSpan? WatchdogInterval(string? microseconds, string? forPid, int ownPid)
    {
        if (!long.TryParse(microseconds, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            return null;
        }
        if (forPid is not null && (!int.TryParse(forPid, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid != ownPid))
        {
            return null;
        }
        return TimeSpan.FromMicroseconds(value);
    }

    public bool IsEnabled => _notifier.IsEnabled;

    /// <summary>The pool serves: the first generation is ready, or a reload has ended either way.</summary>
    public void Ready(string status)
    {
        if (_state is State.Starting or State.Reloading)
        {
            _state = State.Ready;
            Send("READY=1", status);
        }
        else
        {
            Status(status);
        }
    }

    /// <summary>A HUP starts or queues a reload; <see cref="Ready"/> follows when no reload is left to run.</summary>
    public void Reloading(string status)
    {
        if (_state == State.Ready)
        {
            _state = State.Reloading;
            Send($"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds()}", status);
        }
        else
        {
            Status(status);
        }
    }

    /// <summary>The stop has begun; nothing but STATUS follows.</summary>
    public void Stopping(string status)
    {
        // A new supervisor that stops before it took over was never systemd's to hear of.
        if (_state is not (State.Stopping or State.HandedOver or State.AwaitingTakeover))
        {
            _state = State.Stopping;
            Send("STOPPING=1", status);
        }
    }

    public void Status(string status)
    {
        if (status != _status)
        {
            Send(null, status);
        }
    }

    /// <summary>The upgrade's new supervisor: the old one has made it systemd's main pid, and it serves.</summary>
    public void TookOver(string status)
    {
        if (_state == State.AwaitingTakeover)
        {
            _state = State.Ready;
            Send("READY=1", status);
        }
    }

    /// <summary>The supervisor an upgrade replaces: systemd's main pid becomes <paramref name="pid"/>, and this one says no more.</summary>
    public void HandOver(int pid)
    {
        Send($"MAINPID={pid}", null);
        _state = State.HandedOver;
    }

    /// <summary>Called by every turn of the arbiter's loop: WATCHDOG=1 twice per interval, as sd_watchdog_enabled(3) advises.</summary>
    public void OnLoopTurned()
    {
        if (_watchdogInterval is not { } interval || Stopwatch.GetElapsedTime(_lastWatchdog) < interval / 2)
        {
            return;
        }
        _lastWatchdog = Stopwatch.GetTimestamp();
        Send("WATCHDOG=1", null);
    }

    // CLOCK_MONOTONIC, which .NET's Stopwatch reads on Linux, in microseconds: what systemd compares
    // with the time it sent its reload signal.
    private static long MonotonicMicroseconds() =>
        (long)(Stopwatch.GetTimestamp() * (1_000_000.0 / Stopwatch.Frequency));

    private void Send(string? fields, string? status)
    {
        if (status is not null)
        {
            _status = status;
        }
        // Before the takeover systemd hears only the old supervisor; after the handover, only the new one.
        if (!_notifier.IsEnabled || _state is State.AwaitingTakeover or State.HandedOver)
        {
            return;
        }
        var message = (fields, status) switch
        {
            (null, _) => $"STATUS={status}",
            (_, null) => fields,
            _ => $"{fields}\nSTATUS={status}",
        };
        try
        {
            _notifier.Notify(new ServiceState(message));
        }
        catch (SocketException exception) when (!_warned)
        {
            // systemd went away or the socket is not its: the pool serves on regardless; said once.
            _warned = true;
            _warn($"systemd's notify socket cannot be reached ({exception.Message}); the supervisor serves on without telling it");
        }
        catch (SocketException)
        {
        }
    }
}
