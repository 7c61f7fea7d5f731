using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// systemd's side of sd_notify(3): a datagram socket at <see cref="Path"/>, for a process started with
/// NOTIFY_SOCKET set to it. Every message is kept in the order it came.
/// </summary>
internal sealed class NotifySocket : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly string _directory;
    private readonly Channel<string> _messages = Channel.CreateUnbounded<string>();
    private readonly List<string> _received = [];
    private readonly Task _receiving;

    private NotifySocket()
    {
        _directory = Directory.CreateTempSubdirectory("sup-notify-").FullName;
        Path = System.IO.Path.Combine(_directory, "notify");
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
        _receiving = Task.Run(ReceiveAsync);
    }

    public string Path { get; }

    public static NotifySocket Open() => new();

    /// <summary>Every message so far, each as its newline-separated fields.</summary>
    public IReadOnlyList<string> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    /// <summary>The next message that changes the state (READY=1, RELOADING=1, STOPPING=1, MAINPID=), skipping STATUS and WATCHDOG alone.</summary>
    public async Task<string> NextStateAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var message = await _messages.Reader.ReadAsync(deadline.Token);
                if (StateOf(message) is not null)
                {
                    return message;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No READY, RELOADING, STOPPING or MAINPID came within {timeout.TotalSeconds:0} s; received: {string.Join(" | ", Received)}");
        }
    }

    /// <summary>The state field of a message ("READY=1"), or null when it has none.</summary>
    public static string? StateOf(string message) =>
        message.Split('\n').FirstOrDefault(field => field is "READY=1" or "RELOADING=1" or "STOPPING=1" || field.StartsWith("MAINPID=", StringComparison.Ordinal));

    public static string? Field(string message, string name) =>
        message.Split('\n').FirstOrDefault(field => field.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];

    private async Task ReceiveAsync()
    {
        var buffer = new byte[4096];
        while (true)
        {
            int length;
            try
            {
                length = await _socket.ReceiveAsync(buffer, SocketFlags.None);
            }
            catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
            {
                return;
            }
            var message = Encoding.UTF8.GetString(buffer, 0, length);
            lock (_received)
            {
                _received.Add(message);
            }
            _messages.Writer.TryWrite(message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _receiving;
        Directory.Delete(_directory, recursive: true);
    }
}
