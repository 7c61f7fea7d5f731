using System.Text;
using Grpc.Core;

namespace Supervisor.Testing;

/// <summary>
/// A gRPC service described by hand, with no .proto and no code generation, for the test app to serve
/// and the tests to call: one unary call and one server stream, messages as UTF-8 text. Compiled into
/// both projects.
/// </summary>
internal static class GrpcEcho
{
    public const string ServiceName = "supervisor.test.Echo";

    private static readonly Marshaller<string> Utf8 = Marshallers.Create(text => Encoding.UTF8.GetBytes(text), bytes => Encoding.UTF8.GetString(bytes));

    /// <summary>Answers "TEXT from PID".</summary>
    public static readonly Method<string, string> Say = new(MethodType.Unary, ServiceName, nameof(Say), Utf8, Utf8);

    /// <summary>Streams "1" .. "N" for the number N it is sent.</summary>
    public static readonly Method<string, string> Count = new(MethodType.ServerStreaming, ServiceName, nameof(Count), Utf8, Utf8);

    /// <summary>Fails with NOT_FOUND, the text it is sent as the message, and a trailer "where: PID".</summary>
    public static readonly Method<string, string> Fail = new(MethodType.Unary, ServiceName, nameof(Fail), Utf8, Utf8);
}
