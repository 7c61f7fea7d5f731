using System.Text;
using System.Threading.Channels;

namespace Supervisor.Logging;

/// <summary>
/// One log destination (a file, or stdout/stderr), written by a background task from a bounded queue.
/// Whoever logs (the request path, the arbiter's loop, a worker's output reader) only enqueues: a slow
/// disk or a blocked pipe never stalls them. When the queue is full, lines are dropped and counted, and
/// so are lines a full disk refused; the count is reported in the error log as the pump goes on. <see cref="Reopen"/> (SIGUSR1) closes and
/// reopens the file between two lines, so logrotate's move-then-signal loses none.
/// </summary>
internal sealed class LogWriter : IAsyncDisposable
{
    /// <summary>Lines held while the destination is slow: a few seconds of a busy access log.</summary>
    public const int QueueCapacity = 65536;

    private static readonly TimeSpan DrainOnDispose = TimeSpan.FromSeconds(3);
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly Channel<string?> _queue;
    private readonly Stream _standardStream;
    private readonly string _name;
    private readonly Action<string> _reportProblem;
    private readonly Task _pump;
    private volatile string _destination;
    private volatile bool _reopenRequested;
    private long _dropped;
    private int _unflushedLines;
    private StreamWriter? _output;
    private string? _openDestination;

    /// <summary>Why a log file cannot be opened, naming the folder when that is what is missing.</summary>
    public static string DescribeOpenFailure(string path, Exception exception) =>
        exception is DirectoryNotFoundException
            ? $"the folder '{Path.GetDirectoryName(Path.GetFullPath(path))}' does not exist"
            : exception.Message.TrimEnd('.');

    /// <param name="name">What this log is, for messages: "access log".</param>
    /// <param name="destination">A file path, or "-" for <paramref name="standardStream"/>.</param>
    /// <param name="reportProblem">Told, from the background task, of dropped lines and failed reopens (for the error log).</param>
    public LogWriter(string name, string destination, Stream standardStream, Action<string> reportProblem)
    {
        _name = name;
        _destination = destination;
        _standardStream = standardStream;
        _reportProblem = reportProblem;
        _queue = Channel.CreateBounded<string?>(new BoundedChannelOptions(QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
        });
        _output = Open(destination); // Fails here, at start, if the file cannot be written.
        _openDestination = destination;
        _pump = Task.Run(PumpAsync);
    }

    // Lines dropped so far because the destination could not keep up.
    private long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues one line (a trailing newline is added if missing). Never blocks.</summary>
    public void Write(string line)
    {
        if (!_queue.Writer.TryWrite(line))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Closes and reopens the file before the next line: for log rotation (SIGUSR1).</summary>
    public void Reopen()
    {
        _reopenRequested = true;
        _queue.Writer.TryWrite(null); // Wakes the pump; if the queue is full it is awake anyway.
    }

    /// <summary>Sends the following lines to another destination (a reload changed the setting).</summary>
    public void Retarget(string destination)
    {
        if (destination != _destination)
        {
            _destination = destination;
            Reopen();
        }
    }

    /// <summary>Writes what is queued (for a bounded time), then closes the file.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await Task.WhenAny(_pump, Task.Delay(DrainOnDispose));
        if (_output is not null && _openDestination != "-")
        {
            await _output.DisposeAsync();
        }
    }

    private async Task PumpAsync()
    {
        long reportedDropped = 0;
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            if (_reopenRequested)
            {
                _reopenRequested = false;
                SwitchOutput();
            }
            while (reader.TryRead(out var line))
            {
                if (line is not null)
                {
                    TryWrite(line);
                }
            }
            TryFlush();
            var dropped = Dropped;
            if (dropped != reportedDropped)
            {
                _reportProblem($"{dropped - reportedDropped} lines of the {_name} were lost: its destination could not keep up or could not be written ({dropped} in all)");
                reportedDropped = dropped;
            }
        }
    }

    private void SwitchOutput()
    {
        var destination = _destination;
        try
        {
            var next = Open(destination);
            if (_openDestination != "-")
            {
                _output?.Dispose();
            }
            _output = next;
            _openDestination = destination;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // Keep writing where we were, and say so.
            _reportProblem($"cannot open the {_name} '{destination}' ({exception.Message}); still writing to '{_openDestination}'");
        }
    }

    private StreamWriter Open(string destination)
    {
        if (destination == "-")
        {
            return new StreamWriter(_standardStream, Utf8, bufferSize: 16384, leaveOpen: true) { AutoFlush = false };
        }
        var stream = new FileStream(destination, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.ReadWrite | FileShare.Delete,
            BufferSize = 0,
        });
        return new StreamWriter(stream, Utf8, bufferSize: 16384) { AutoFlush = false };
    }

    // Lines go to the writer's buffer and reach the destination at the next flush (or when the buffer
    // fills): a full disk fails either, and the lines that were in the buffer are lost and counted.
    private void TryWrite(string line)
    {
        try
        {
            _output?.Write(line);
            if (!line.EndsWith('\n'))
            {
                _output?.Write('\n');
            }
            _unflushedLines++;
        }
        catch (IOException)
        {
            CountLostBuffer(lostWithIt: 1);
        }
    }

    private void TryFlush()
    {
        try
        {
            _output?.Flush();
            _unflushedLines = 0;
        }
        catch (IOException)
        {
            CountLostBuffer(lostWithIt: 0);
        }
    }

    // A StreamWriter empties its buffer before it writes it out, so what a failed write held is gone: count it.
    private void CountLostBuffer(int lostWithIt)
    {
        Interlocked.Add(ref _dropped, _unflushedLines + lostWithIt);
        _unflushedLines = 0;
    }
}
