using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// A real supervisor process started from the published binary. Its log is captured line by line so a
/// test can await what the supervisor says (no sleeps), and it is shown when a test fails.
/// Disposing stops the supervisor and kills every worker it reported, whatever state the test left them in.
/// </summary>
internal sealed partial class SupervisorProcess : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan QuickStopTimeout = TimeSpan.FromSeconds(5);

    private readonly Process _process;
    private readonly ITestOutputHelper _output;
    private readonly List<string> _lines = [];
    private readonly Lock _lock = new();
    private readonly List<(Regex Pattern, TaskCompletionSource<Match> Found)> _waiters = [];
    private int _openStreams = 2; // stdout and stderr: once both have ended, no line can come any more

    private SupervisorProcess(Process process, ITestOutputHelper output)
    {
        _process = process;
        _output = output;
    }

    public int Pid => _process.Id;

    /// <summary>The address from "Listening at: http://127.0.0.1:PORT" (or https): tests bind port 0.</summary>
    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");

    public string Log
    {
        get
        {
            lock (_lock)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Pids of every worker the supervisor said it booted.</summary>
    public IReadOnlyList<int> BootedWorkerPids => BootedWorkerPidsSince(0);

    /// <summary>Pids of the workers booted after the first <paramref name="skip"/> log lines.</summary>
    public IReadOnlyList<int> BootedWorkerPidsSince(int skip)
    {
        lock (_lock)
        {
            return [.. _lines.Skip(skip).Select(line => BootedPattern().Match(line)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value))];
        }
    }

    public static Task<SupervisorProcess> StartAsync(ITestOutputHelper output, string app, params string[] arguments) =>
        StartAsync(output, app, arguments, environment: null);

    /// <param name="launcher">A command that execs the supervisor with the rest of its arguments (env, nohup), as a user's script might.</param>
    public static async Task<SupervisorProcess> StartAsync(ITestOutputHelper output, string app, string[] arguments, IReadOnlyDictionary<string, string>? environment, string? workingDirectory = null, string[]? launcher = null)
    {
        var artifacts = await Artifacts.GetAsync();
        var startInfo = new ProcessStartInfo(launcher?[0] ?? artifacts.Supervisor)
        {
            WorkingDirectory = workingDirectory ?? "",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] launchedBy = launcher is null ? [] : [.. launcher[1..], artifacts.Supervisor];
        foreach (var argument in launchedBy)
        {
            startInfo.ArgumentList.Add(argument);
        }
        startInfo.ArgumentList.Add("--app");
        startInfo.ArgumentList.Add(app);
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }
        var process = new Process { StartInfo = startInfo };
        var supervisor = new SupervisorProcess(process, output);
        process.OutputDataReceived += (_, e) => supervisor.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => supervisor.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return supervisor;
    }

    /// <summary>Starts a supervisor on a free loopback port and waits until all its workers are ready.</summary>
    public static Task<SupervisorProcess> StartReadyAsync(ITestOutputHelper output, string app, params string[] arguments) =>
        StartReadyAsync(output, app, arguments, environment: null);

    public static async Task<SupervisorProcess> StartReadyAsync(ITestOutputHelper output, string app, string[] arguments, IReadOnlyDictionary<string, string>? environment, string? workingDirectory = null, string[]? launcher = null)
    {
        var supervisor = await StartAsync(output, app, ["--bind", "127.0.0.1:0", .. arguments], environment, workingDirectory, launcher);
        try
        {
            var listening = await supervisor.WaitForLogAsync(@"Listening at: (https?://\S+)", StartTimeout);
            supervisor.BaseAddress = new Uri(listening.Groups[1].Value);
            await supervisor.WaitForLogAsync(@"All \d+ workers ready", StartTimeout);
            return supervisor;
        }
        catch
        {
            await supervisor.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits for a log line matching <paramref name="pattern"/>, including lines already written.</summary>
    public Task<Match> WaitForLogAsync(string pattern, TimeSpan timeout) => WaitForLogAsync(pattern, timeout, skip: 0);

    /// <summary>Waits for a matching line among those written after the first <paramref name="skip"/> lines.</summary>
    public async Task<Match> WaitForLogAsync(string pattern, TimeSpan timeout, int skip)
    {
        var regex = new Regex(pattern);
        var found = new TaskCompletionSource<Match>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            foreach (var line in _lines.Skip(skip))
            {
                if (regex.Match(line) is { Success: true } match)
                {
                    return match;
                }
            }
            if (_openStreams == 0)
            {
                throw OutputEnded(regex);
            }
            _waiters.Add((regex, found));
        }
        try
        {
            return await found.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No log line matched /{pattern}/ within {timeout.TotalSeconds} s. Log:\n{Log}");
        }
    }

    public int LineCount
    {
        get
        {
            lock (_lock)
            {
                return _lines.Count;
            }
        }
    }

    public void Signal(int signal) => Assert.True(Posix.Kill(Pid, signal), $"kill({Pid}, {signal}) failed");

    public async Task<int> WaitForExitAsync(TimeSpan timeout) =>
        await ExitsWithinAsync(timeout)
            ? _process.ExitCode
            : throw new TimeoutException($"The supervisor did not exit within {timeout.TotalSeconds} s. Log:\n{Log}");

    public bool HasExited => _process.HasExited;

    public HttpClient CreateClient() => new() { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>--admin-bind's address, as the supervisor logs it when its health endpoints listen.</summary>
    public async Task<Uri> AdminAddressAsync(TimeSpan timeout) =>
        new((await WaitForLogAsync(@"Health endpoints at: (http://\S+) \(GET /livez", timeout)).Groups[1].Value);

    public async ValueTask DisposeAsync()
    {
        // A quick stop (SIGQUIT) first, so the supervisor removes its socket directory as it would for
        // a user; SIGKILL only if it does not exit, as a supervisor stuck by the test would not.
        if (!_process.HasExited && Posix.Kill(Pid, Posix.SIGQUIT) && !await ExitsWithinAsync(QuickStopTimeout))
        {
            Posix.Kill(Pid, Posix.SIGKILL);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        foreach (var pid in BootedWorkerPids)
        {
            Posix.Kill(pid, Posix.SIGKILL);
        }
        _output.WriteLine($"--- supervisor log (pid {Pid}) ---\n{Log}");
        _process.Dispose();
    }

    private async Task<bool> ExitsWithinAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            // A stream ended. Once both have, a waiter would wait out its whole timeout for nothing
            // (a supervisor that refused its arguments and exited): it is told at once, with the log.
            lock (_lock)
            {
                if (--_openStreams == 0)
                {
                    foreach (var (pattern, found) in _waiters)
                    {
                        found.TrySetException(OutputEnded(pattern));
                    }
                    _waiters.Clear();
                }
            }
            return;
        }
        lock (_lock)
        {
            _lines.Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Pattern.Match(line) is { Success: true } match)
                {
                    _waiters[i].Found.TrySetResult(match);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private InvalidOperationException OutputEnded(Regex pattern) =>
        new($"The supervisor's output ended (it exited) before a line matched /{pattern}/. Log:\n{string.Join('\n', _lines)}");

    [GeneratedRegex(@"Booting worker with pid: (\d+)")]
    private static partial Regex BootedPattern();
}
