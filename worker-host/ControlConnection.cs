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

    /// <summary>Calls <paramref name="onClosed"/> once, from a background thread, when the supervisor's end closes.</summary>
    public void WatchForClose(Action onClosed)
    {
        var thread = new Thread(() =>
        {
            var buffer = new byte[256];
            try
            {
                // The supervisor sends nothing yet; a read returning 0 means its end is gone.
                while (_socket.Receive(buffer) > 0)
                {
                }
            }
            catch (SocketException)
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
