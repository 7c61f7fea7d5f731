using System.Diagnostics;
using Serilog.Events;
using Supervisor.Native;

namespace Supervisor.Workers;

/// <summary>
/// One running copy of the app. A plain <see cref="Process"/> child: the supervisor signals it with
/// kill(2) and reads its exit code. Where it stands in the pool is the arbiter's business, not this type's.
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private const int TailLines = 20;

    // A grandchild that inherited the worker's stdout could keep the pipe open after the worker exits.
    private static readonly TimeSpan OutputDrainLimit = TimeSpan.FromSeconds(1);

    private readonly Process _process;
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly WorkerOutputLevels _stdoutLevels = new(LogEventLevel.Information);
    private readonly WorkerOutputLevels _stderrLevels = new(LogEventLevel.Error);

    private WorkerProcess(WorkerIdentity identity, Process process, DateTimeOffset startedAt)
    {
        Identity = identity;
        _process = process;
        StartedAt = startedAt;
    }

    public WorkerIdentity Identity { get; }

    public string Key => Identity.Key;

    public int Pid { get; private set; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>The last lines of its stdout and stderr, for boot-failure reports.</summary>
    public OutputTail Tail { get; } = new(TailLines);

    /// <summary>Completes with the exit code when the process has exited and its last output lines are read.</summary>
    public Task<int> Exited => _exited.Task;

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>Starts the process. <paramref name="onOutput"/> gets each line and its level (see <see cref="WorkerOutputLevels"/>).</summary>
    public static WorkerProcess Start(WorkerIdentity identity, ProcessStartInfo startInfo, TimeProvider time, Action<WorkerProcess, string, LogEventLevel> onOutput)
    {
        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var worker = new WorkerProcess(identity, process, time.GetUtcNow());
        process.OutputDataReceived += (_, e) => worker.OnLine(e.Data, isError: false, onOutput);
        process.ErrorDataReceived += (_, e) => worker.OnLine(e.Data, isError: true, onOutput);
        process.Exited += (_, _) => _ = worker.CompleteExitAsync();
        process.Start();
        worker.Pid = process.Id;
        // Workers get an empty stdin: a terminal's input belongs to the supervisor.
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>Resident memory in bytes, from /proc; null once the process is gone.</summary>
    public long? ResidentBytes()
    {
        try
        {
            // statm: size resident shared ... in pages.
            var fields = File.ReadAllText($"/proc/{Pid}/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception exception) when (exception is IOException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Sends a signal; false when the process is already gone.</summary>
    public bool Signal(int signal) => !HasExited && Libc.Kill(Pid, signal);

    public void Dispose() => _process.Dispose();

    public override string ToString() => $"{Identity} pid {Pid}";

    // The exit is reported once the output is drained, so a boot failure can quote the last lines.
    private async Task CompleteExitAsync()
    {
        var outputClosed = Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task);
        await Task.WhenAny(outputClosed, Task.Delay(OutputDrainLimit));
        _exited.TrySetResult(SafeExitCode(_process));
    }

    private void OnLine(string? line, bool isError, Action<WorkerProcess, string, LogEventLevel> onOutput)
    {
        if (line is null)
        {
            (isError ? _stderrClosed : _stdoutClosed).TrySetResult();
            return;
        }
        Tail.Add(line);
        // Each stream's lines arrive in order on one callback at a time, so its reader needs no lock.
        onOutput(this, line, (isError ? _stderrLevels : _stdoutLevels).Classify(line));
    }

    private static int SafeExitCode(Process process)
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
