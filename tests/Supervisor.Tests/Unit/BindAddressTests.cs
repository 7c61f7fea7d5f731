using Supervisor.Configuration;

namespace Supervisor.Tests.Unit;

public sealed class BindAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:8000", "127.0.0.1", 8000)]
    [InlineData("0.0.0.0:80", "0.0.0.0", 80)]
    [InlineData("[::]:8080", "::", 8080)]
    [InlineData("[::1]", "::1", 8000)]
    [InlineData("localhost:5000", "localhost", 5000)]
    [InlineData(":9000", "0.0.0.0", 9000)]
    [InlineData("10.1.2.3", "10.1.2.3", 8000)]
    [InlineData("127.0.0.1:0", "127.0.0.1", 0)]
    public void Tcp_addresses_parse_in_gunicorn_syntax(string text, string host, int port) =>
        Assert.Equal(new TcpBind(host, port), BindAddress.Parse(text));

    [Fact]
    public void A_unix_address_becomes_an_absolute_path() =>
        Assert.Equal(new UnixBind(Path.GetFullPath("app.sock")), BindAddress.Parse("unix:app.sock"));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("unix:", "socket path is missing")]
    [InlineData("1.2.3", "not an IP address")]
    [InlineData("example.com:80", "not an IP address")]
    [InlineData("127.0.0.1:http", "not a port number")]
    [InlineData("127.0.0.1:70000", "not a port number")]
    [InlineData("::1:8000", "brackets")]
    [InlineData("http://127.0.0.1:8000", "without a scheme, like 127.0.0.1:8000")]
    [InlineData("https://[::1]:8443", "without a scheme")]
    [InlineData("h2c://127.0.0.1:8001", "write h2c:HOST:PORT, like h2c:127.0.0.1:8001")]
    [InlineData("h2c:h2c:127.0.0.1:8001", "h2c: is given twice")]
    [InlineData("h2c:", "it is empty")]
    [InlineData("[::1:8000", "closing ']'")]
    [InlineData("fd://", "3 or more")]
    [InlineData("fd://2", "3 or more")]
    [InlineData("fd://three", "3 or more")]
    public void Malformed_addresses_are_refused_with_the_reason(string text, string reason)
    {
        var error = Assert.Throws<SettingValueException>(() => BindAddress.Parse(text));
        Assert.Contains(reason, error.Message);
        Assert.Contains("HOST:PORT", error.Message);
    }

    [Fact]
    public void Addresses_print_the_way_they_are_written() =>
        Assert.Equal("[::1]:8000", BindAddress.Parse("[::1]:8000").ToString());

    [Theory]
    [InlineData("h2c:127.0.0.1:8001", "h2c:127.0.0.1:8001")]
    [InlineData("h2c:[::1]:8001", "h2c:[::1]:8001")]
    [InlineData("h2c:unix:/run/app.sock", "h2c:unix:/run/app.sock")]
    public void An_h2c_address_reads_back_as_written(string text, string spelled)
    {
        var bind = BindAddress.Parse(text);
        Assert.True(bind.CleartextHttp2);
        Assert.Equal(spelled, bind.ToString());
    }

    [Theory]
    [InlineData("fd://3", 3, false)]
    [InlineData("h2c:fd://4", 4, true)]
    public void An_inherited_socket_is_named_by_its_descriptor(string text, int descriptor, bool cleartextHttp2)
    {
        var bind = BindAddress.Parse(text);
        Assert.Equal(new FdBind(descriptor) { CleartextHttp2 = cleartextHttp2 }, bind);
        Assert.Equal(text, bind.ToString());
    }

    [Theory]
    [InlineData("2", "4242", "fd://3 fd://4")]
    [InlineData("1", "4243", null)] // meant for another process: a parent that did not unset them
    [InlineData("0", "4242", null)]
    [InlineData("x", "4242", null)]
    public void Socket_activation_passes_sockets_from_descriptor_3_to_the_process_named(string count, string pid, string? binds)
    {
        var passed = SocketActivation.PassedSockets(new Dictionary<string, string> { ["LISTEN_FDS"] = count, ["LISTEN_PID"] = pid }, ownPid: 4242);
        Assert.Equal(binds, passed is null ? null : string.Join(' ', passed));
    }

    [Fact]
    public void An_upgrade_handover_reads_back_what_was_written()
    {
        var handover = new UpgradeHandover(4242, "/run/myapi/sockets/command.sock",
            [new FdBind(15), new FdBind(16) { CleartextHttp2 = true }], new FdBind(17));

        var text = handover.ToString();

        Assert.Equal("from=4242;socket=/run/myapi/sockets/command.sock;bind=15,h2c:16;admin=17", text);
        var read = UpgradeHandover.Parse(text);
        Assert.Equal((4242, handover.CommandSocket, "fd://15 h2c:fd://16", "fd://17"),
            (read.FromPid, read.CommandSocket, string.Join(' ', read.Binds), read.AdminBind?.ToString()));
    }

    [Theory]
    [InlineData("from=4242;socket=/s;bind=")] // no socket to serve
    [InlineData("socket=/s;bind=3")]
    [InlineData("from=4242;bind=3")]
    [InlineData("from=4242;socket=/s;bind=2")] // stderr is not a listening socket
    [InlineData("from=4242;socket=/s;bind=3;bind=4")]
    [InlineData("from=x;socket=/s;bind=3")]
    [InlineData("from=4242;socket=/s;bind=3;admin=h2c:4")]
    [InlineData("3,4")]
    public void A_handover_the_supervisor_did_not_write_is_refused_naming_the_variable(string text)
    {
        var refused = Assert.Throws<Supervisor.Cli.UsageException>(() => UpgradeHandover.Parse(text));
        Assert.Contains("$SUPERVISOR_UPGRADE=", refused.Message);
        Assert.Contains("never by hand", refused.Message);
    }
}
