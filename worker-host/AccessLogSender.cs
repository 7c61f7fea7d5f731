using System.Buffers;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Supervisor.WorkerHost;

/// <summary>
/// Kernel and handoff modes: this worker's access-log lines, streamed to the supervisor, which writes every
/// worker's lines to the one access log, so that the file, its format, USR1's reopen and a reload's new
/// file stay the supervisor's alone, as in proxy mode. A request only queues its line: when the
/// supervisor cannot keep up, lines are dropped and counted (told on this worker's output), and no
/// request ever waits for the log.
/// </summary>
internal sealed class AccessLogSender
{
    // About 1.5 MB of lines: a second of a busy worker's requests, held while the supervisor catches up.
    private const int QueuedLines = 8192;
    private const int BatchBytes = 60_000;

    private readonly Socket _socket;
    private readonly Channel<string> _lines = Channel.CreateBounded<string>(new BoundedChannelOptions(QueuedLines) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Task _sending;
    private long _dropped;

    private AccessLogSender(Socket socket)
    {
        _socket = socket;
        _sending = Task.Run(SendAsync);
    }

    /// <summary>Connects to the supervisor's access-log socket; null, with a note on the worker's output, if it cannot.</summary>
    public static AccessLogSender? Connect(string socketPath)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return new AccessLogSender(socket);
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            HookLog.Failure($"cannot reach the supervisor's access log at {socketPath} ({exception.Message}); this worker's requests are not logged");
            return null;
        }
    }

    /// <summary>Queues one line; never blocks.</summary>
    public void Send(string line)
    {
        if (!_lines.Writer.TryWrite(line))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>At the worker's stop, once its server has finished every request: sends what is queued, waiting at most <paramref name="bound"/>.</summary>
    public void Flush(TimeSpan bound)
    {
        _lines.Writer.TryComplete();
        if (!_sending.Wait(bound))
        {
            HookLog.Failure($"the access log's last lines were not all sent within {bound.TotalSeconds:0} s");
        }
        _socket.Dispose();
    }

    // Each pass takes every line already queued (up to a batch) and sends them in one write: under load a
    // write carries hundreds of lines, and an idle worker's single line goes at once.
    private async Task SendAsync()
    {
        var batch = new ArrayBufferWriter<byte>(BatchBytes + 4096);
        long reportedDropped = 0;
        try
        {
            while (await _lines.Reader.WaitToReadAsync())
            {
                while (batch.WrittenCount < BatchBytes && _lines.Reader.TryRead(out var line))
                {
                    Encoding.UTF8.GetBytes(line, batch);
                    batch.Write("\n"u8);
                }
                for (var sent = 0; sent < batch.WrittenCount;)
                {
                    sent += await _socket.SendAsync(batch.WrittenMemory[sent..], SocketFlags.None);
                }
                batch.ResetWrittenCount();
                var dropped = Interlocked.Read(ref _dropped);
                if (dropped != reportedDropped)
                {
                    HookLog.Failure($"{dropped - reportedDropped} access-log lines dropped: requests came faster than the supervisor took their lines");
                    reportedDropped = dropped;
                }
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
        {
            _lines.Writer.TryComplete(); // From now on each line is counted as dropped.
            HookLog.Failure($"the access log's connection to the supervisor was lost ({exception.Message}); this worker's requests are no longer logged");
        }
    }
}
