using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Supervisor.Configuration;
using Supervisor.Proxy;

namespace Supervisor.Tests.Unit;

/// <summary>A failure to listen names its fix; the privileged-port case is hard to make for real as root.</summary>
public sealed class ListenFailureTests
{
    [Theory]
    [InlineData("0.0.0.0:80", SocketError.AccessDenied, "ports below 1024 need root or CAP_NET_BIND_SERVICE")]
    [InlineData("0.0.0.0:8000", SocketError.AddressAlreadyInUse, "the address is already in use; stop whatever holds it or choose another --bind")]
    [InlineData("10.9.9.9:8000", SocketError.AddressNotAvailable, "this machine has no such address")]
    public void Each_socket_error_gets_its_own_fix(string bind, SocketError error, string expected)
    {
        // As Kestrel reports it: an IOException around the socket's error.
        var failure = ListenFailure.For([BindAddress.Parse(bind)], new IOException($"Failed to bind to address http://{bind}", new SocketException((int)error)));

        Assert.Equal($"cannot listen on {bind}: ", failure.Message[..(failure.Message.IndexOf(": ", StringComparison.Ordinal) + 2)]);
        Assert.Contains(expected, failure.Message);
        Assert.Equal(1, failure.ExitCode);
    }

    [Fact]
    public void Kestrels_address_in_use_exception_is_read_through_its_wrapper() =>
        Assert.EndsWith("the address is already in use; stop whatever holds it or choose another --bind",
            ListenFailure.For([BindAddress.Parse("127.0.0.1:8000")], new IOException("Failed to bind", new AddressInUseException("in use"))).Message);
}
