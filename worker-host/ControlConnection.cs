using System.Net.Sockets;
using System.Text;

namespace Supervisor.WorkerHost;

/// <summary>
/// The worker's end of the control socket: sends one-line messages, and notices when the supervisor
/// goes away (end of stream), which is how a worker avoids outliving a killed supervisor.
/// </summary>
internal sealed class ControlConnection
{
    private readonly Socket _socket;
    private readonly object _sendLock = new();
    private volatile bool _closed;

    private ControlConnection(Socket socket) => _socket = socket;

    public static ControlConnection Connect(string socketPath)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return new ControlConnection(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Send(string line)
    {
        if (_closed)
        {
            return;
        }
        var bytes = Encoding.ASCII.GetBytes(line + "\n");
        try
        {
            lock (_sendLock)
            {
                _socket.Send(bytes);
            }
        }
        catch (SocketException)
        {
            _closed = true; // The reader thread reports the loss; sending just stops.
        }
        catch (ObjectDisposedException)
        {
            _closed = true;
        }
    }

    /// <summary>
    /// Reads the supervisor's one-line messages on a background thread, calling <paramref name="onMessage"/>
    /// for each, and <paramref name="onClosed"/> once when the supervisor's end closes.
    /// </summary>
    public void Watch(Action<string> onMessage, Action onClosed)
    {
        var thread = new Thread(() =>
        {
            try
            {
                using var reader = new StreamReader(new NetworkStream(_socket, ownsSocket: false), Encoding.ASCII);
                while (reader.ReadLine() is { } line)
                {
                    onMessage(line);
                }
            }
            catch (IOException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
            _closed = true;
            onClosed();
        })
        {
            IsBackground = true,
            Name = "supervisor-control",
        };
        thread.Start();
    }
}
