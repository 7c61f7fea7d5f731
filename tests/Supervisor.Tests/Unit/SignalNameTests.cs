using System.Runtime.InteropServices;
using Supervisor.Arbitration;

namespace Supervisor.Tests.Unit;

public sealed class SignalNameTests
{
    [Theory]
    [InlineData(PosixSignal.SIGTERM, "term")]
    [InlineData(PosixSignal.SIGHUP, "hup")]
    [InlineData(PosixSignal.SIGTTIN, "ttin")]
    [InlineData((PosixSignal)10, "usr1")]
    [InlineData((PosixSignal)12, "usr2")]
    [InlineData(PosixSignal.SIGWINCH, "winch")]
    [InlineData((PosixSignal)14, "14")]
    public void Signals_are_named_as_gunicorn_logs_them_even_those_dotnet_has_no_name_for(PosixSignal signal, string name) =>
        Assert.Equal(name, SignalHandlers.Name(signal));
}
