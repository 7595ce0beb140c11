"""
Ingress resource for the Hephy Workflow controller, on networking.k8s.io/v1.

The controller image quay.io/hephy/controller:v2.22.0 ships a
scheduler/resources/ingress.py that calls /apis/extensions/v1beta1. Kubernetes
1.22 removed Ingress from that API group, so `deis create` fails on current
clusters. The hephy-doks chart puts this file in a ConfigMap and mounts it over
/app/scheduler/resources/ingress.py in the controller pod. The class name,
method signatures and error messages are the same as the image's module, so
the rest of the controller keeps working unchanged.

Creating an app's Ingress is left to the route reconciler (files/routes/routes.py).
The controller's ServiceAccount needs RBAC on networking.k8s.io ingresses.
Keep this module runnable on the image's Python 3.6: no newer syntax.
"""
from scheduler.exceptions import KubeHTTPException
from scheduler.resources import Resource


class Ingress(Resource):
    # Resource.api() builds "/apis/networking.k8s.io/v1" + template
    api_prefix = 'apis'
    api_version = 'networking.k8s.io/v1'
    short_name = 'ingress'

    def get(self, name=None, **kwargs):
        """
        Fetch one Ingress, or list Ingresses when no name is given.

        Workflow gives an app's Ingress the app's name and puts it in the
        namespace of the same name, so `name` is used as both.
        """
        if name is None:
            # all namespaces (the v2.22.0 code asked for namespace "None")
            url = self.api('/ingresses')
            message = 'get Ingresses'
        else:
            url = self.api('/namespaces/{}/ingresses/{}', name, name)
            message = 'get Ingress ' + name

        response = self.http_get(url, params=self.query_params(**kwargs))
        if self.unhealthy(response.status_code):
            raise KubeHTTPException(response, message)
        return response

    def create(self, ingress, namespace, hostname):
        """
        Make nothing: the chart's route reconciler (files/routes/routes.py) owns
        every app's Ingress, with its hosts, certificates and access rules. The
        controller calls this at every deploy and scale when get() finds none
        (api/models/app.py App.create), as while the app is not routable; a bare
        Ingress made here would serve the app without its rules. The controller
        does not read what this returns.
        """
        return None

    def delete(self, namespace, ingress):
        """Delete Ingress `ingress` from `namespace`."""
        url = self.api('/namespaces/{}/ingresses/{}', namespace, ingress)
        response = self.http_delete(url)
        if self.unhealthy(response.status_code):
            raise KubeHTTPException(response, 'delete Ingress "{}"', namespace)
        return response
