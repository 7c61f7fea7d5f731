using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using Supervisor.Control;

namespace Supervisor.Logging;

/// <summary>
/// Kernel and handoff modes, where the workers serve the clients: the access-log lines each worker renders
/// (the worker-host's <c>AccessLogSender</c>), read from one Unix stream per worker on <c>access.sock</c> (mode
/// 0600 in the 0700 run directory) and written to the access log like the front's own. Reading never
/// waits on the disk: the access log's writer queues or drops and counts.
/// </summary>
internal sealed class WorkerAccessLines : IAsyncDisposable
{
    // Longer than any line a worker writes (Kestrel's request line and headers are limited to 32 KB
    // together): a stream without a newline for this long is not an access log, and is closed.
    private const int LongestLine = 256 * 1024;

    private readonly Socket _listener;
    private readonly AccessLog _accessLog;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _readers = [];
    private readonly Lock _readersLock = new();
    private readonly Task _accepting;

    private WorkerAccessLines(Socket listener, AccessLog accessLog, ILogger log)
    {
        _listener = listener;
        _accessLog = accessLog;
        _log = log;
        _accepting = PrivateUnixListener.AcceptUntilStoppedAsync(listener, Read, _stopping.Token);
    }

    public static WorkerAccessLines Start(string socketPath, AccessLog accessLog, ILogger log) =>
        new(PrivateUnixListener.Bind(socketPath, backlog: 128), accessLog, log);

    private void Read(Socket connection)
    {
        lock (_readersLock)
        {
            _readers.RemoveAll(reader => reader.IsCompleted);
            _readers.Add(ReadLinesAsync(connection));
        }
    }

    private async Task ReadLinesAsync(Socket connection)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        var reader = PipeReader.Create(stream);
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_stopping.Token);
                var buffer = result.Buffer;
                while (buffer.PositionOf((byte)'\n') is { } end)
                {
                    _accessLog.WriteLine(Encoding.UTF8.GetString(buffer.Slice(0, end)));
                    buffer = buffer.Slice(buffer.GetPosition(1, end));
                }
                if (buffer.Length > LongestLine)
                {
                    _log.Warning("A worker's access-log stream sent {Bytes} bytes without a line end; its connection is closed and its lines are no longer logged", buffer.Length);
                    return;
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return; // The worker exited; a line it did not finish is not logged.
                }
            }
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    /// <summary>At the supervisor's stop, after the workers: their connections have ended, and the lines they sent are written.</summary>
    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        Task[] readers;
        lock (_readersLock)
        {
            readers = [.. _readers];
        }
        // A worker still alive here (one that outlived its kill) would keep its stream open: bounded.
        await Task.WhenAny(Task.WhenAll(readers), Task.Delay(TimeSpan.FromSeconds(2)));
        await _stopping.CancelAsync();
        await Task.WhenAll(readers.Append(_accepting));
        _stopping.Dispose();
    }
}
