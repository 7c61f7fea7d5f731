using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Supervisor.Arbitration;
using Supervisor.Cli;
using Supervisor.Control;

namespace Supervisor.Tests.Unit;

/// <summary>
/// The command socket as an attacker's or a wrong client's peer: whatever arrives, each connection gets
/// one bounded answer or is closed, and only well-formed requests reach the arbiter.
/// </summary>
public sealed class CommandServerTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly string _directory = Directory.CreateTempSubdirectory("command-server-").FullName;
    private readonly Channel<ArbiterEvent> _events = Channel.CreateUnbounded<ArbiterEvent>();
    private CommandServer _server = null!;

    private string SocketPath => Path.Combine(_directory, CommandProtocol.SocketName);

    public Task InitializeAsync()
    {
        _server = CommandServer.Start(SocketPath, _events.Writer);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void The_socket_is_for_its_owner_alone()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
    }

    [Theory]
    [InlineData("GET / HTTP/1.1")]
    [InlineData("{\"command\": \"shutdown\"}")]
    [InlineData("{\"command\": 7}")]
    [InlineData("")]
    public async Task A_request_that_is_not_one_is_answered_with_an_error_and_reaches_no_one(string line)
    {
        var reply = await AskAsync(line + "\n");
        Assert.StartsWith("{\"error\":\"unknown request", reply);
        Assert.False(_events.Reader.TryRead(out _));
    }

    [Fact]
    public async Task A_request_line_longer_than_the_limit_is_closed_without_an_answer()
    {
        var reply = await AskAsync(new string('x', CommandProtocol.MaxRequestBytes + 100));
        Assert.Equal("", reply);
        Assert.False(_events.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Status_is_answered_with_what_the_arbiter_gives()
    {
        var asking = AskAsync("{\"command\":\"status\"}\n");
        var request = Assert.IsType<StatusRequested>(await _events.Reader.ReadAsync().AsTask().WaitAsync(Bound));
        request.Reply.SetResult(new PoolStatusReply(42, "0.0.0", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddHours(1), 1, 3, "none", 0, 0,
            [new WorkerStatus(0, 43, 3, "serving", DateTimeOffset.UnixEpoch, 1041, 2, 50L << 20, null)]));
        var reply = CommandProtocol.Read<PoolStatusReply>(await asking);
        Assert.NotNull(reply);
        Assert.Equal(1041, Assert.Single(reply.Pool).Requests);
        Assert.Contains("0     43   3    serving  1h 0m  1041      2          50.0 MiB", StatusReport.Write(reply));
    }

    [Fact]
    public async Task A_reload_waited_for_when_the_supervisor_stops_is_answered_stopping()
    {
        var asking = AskAsync("{\"command\":\"reload\",\"wait\":true}\n");
        var request = Assert.IsType<ReloadRequested>(await _events.Reader.ReadAsync().AsTask().WaitAsync(Bound));
        Assert.True(request.Wait);
        _server.Stop();
        Assert.Equal(ReloadReply.Stopping, CommandProtocol.Read<ReloadReply>(await asking)?.Result);
    }

    [Theory]
    [InlineData(0.4, "0s")]
    [InlineData(59, "59s")]
    [InlineData(61, "1m 1s")]
    [InlineData(3 * 3600 + 240, "3h 4m")]
    [InlineData(2 * 86400 + 3 * 3600, "2d 3h")]
    public void Ages_show_their_two_largest_units(double seconds, string expected) =>
        Assert.Equal(expected, StatusReport.Age(TimeSpan.FromSeconds(seconds)));

    // Sends the text, then reads until the server closes: its one reply line without the newline, or "".
    private async Task<string> AskAsync(string text)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var deadline = new CancellationTokenSource(Bound);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), deadline.Token);
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(text), deadline.Token);
        using var reader = new StreamReader(stream);
        try
        {
            return (await reader.ReadToEndAsync(deadline.Token)).TrimEnd('\n');
        }
        catch (IOException)
        {
            return ""; // Reset: the server closed with our unread bytes in its buffer.
        }
    }
}
