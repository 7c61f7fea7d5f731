using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Supervisor.Tests.Infrastructure;

/// <summary>A self-signed certificate for 127.0.0.1 and localhost, as the PEM files --certfile and --keyfile take.</summary>
internal static class TestCertificate
{
    public static (string CertFile, string KeyFile, string Thumbprint) Create(string directory)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        var certFile = Path.Combine(directory, "cert.pem");
        var keyFile = Path.Combine(directory, "key.pem");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (certFile, keyFile, certificate.GetCertHashString());
    }

    /// <summary>A client that trusts only the certificate with <paramref name="thumbprint"/>.</summary>
    public static HttpClient CreateClient(Uri baseAddress, string thumbprint) =>
        new(CreateHandler(thumbprint)) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>A handler that trusts only the certificate with <paramref name="thumbprint"/>, for clients that build their own (gRPC).</summary>
    public static SocketsHttpHandler CreateHandler(string thumbprint)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == thumbprint;
        return handler;
    }
}
